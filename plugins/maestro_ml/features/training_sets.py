"""Point-in-time-correct training sets of a Feast feature service, built from entity dataframes.

The join runs in-process by default (``maestro_ml.features.point_in_time``: Feast's definitions and
on-demand transformations, about 200x the file offline store's throughput) or through Feast's
``get_historical_features`` (``engine="feast"``); both give the same values.

Two shapes, one row per entity:

* ``ranking``: one row per (assignment decision, eligible candidate). A decision is a
  ``task_assigned`` event at time ``a``; the eligible candidates are the members of the task's
  team (the project's team) who had joined and not left at ``a``, minus the team's managers
  (users who had assigned a task before ``a``). The chosen assignee is always included.
* ``duration``: one row per assignment that ran to completion (task, assignee, ``a``).

Every row is looked up *just before* the decision: ``event_timestamp = a - DECISION_LEAD``, so the
assignment event itself (which moves the chosen user's workload and the task's status) never
leaks into its own features. ``request_time_unix`` carries the same instant for the on-demand
views. Outcomes come from ``historical_task_assignments`` (timestamped when they became known,
so they are labels here, never features).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from maestro_ml import lake
from maestro_ml.contracts.features import ASSIGNMENTS, LOOKBACK, REQUEST_TIME_FIELD, TIMESTAMP_COLUMN, VIEWS
from maestro_ml.contracts.models import MODELS, TrainingSetKind
from maestro_ml.contracts.training_sets import sample_whole_groups
from maestro_ml.feast_ext.store import get_store
from maestro_ml.features.compute import TS_DTYPE, to_frame, utc_timestamp
from maestro_ml.features.offline import read_view
from maestro_ml.features.point_in_time import historical_features
from maestro_ml.settings import Settings, get_settings
from maestro_ml.validation.outcome import NoDataError

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

JoinEngine = Literal["local", "feast"]
# The feature service each kind of set reads by default: the one its model's spec names.
FEATURE_SERVICES: dict[str, str] = {spec.training_set: spec.feature_service for spec in MODELS.values()}
DECISION_LEAD = pd.Timedelta(milliseconds=1)
VECTOR_FEATURES = frozenset(f.name for v in VIEWS.values() for f in v.features if f.dtype.startswith("Array"))
ENTITY_COLUMNS = ["decision_id", "task_id", "user_id", "project_id", "reporter_id", "assigned_at", TIMESTAMP_COLUMN,
                  REQUEST_TIME_FIELD]
# Entity columns that are join keys of some view (the rest are the decision's id and times).
JOIN_KEY_COLUMNS = ("task_id", "user_id", "project_id", "reporter_id")
# Feast's file offline store joins every entity row with every row of its key inside the TTL before
# picking the latest, so memory grows with (entity rows x rows per key): 100k bench rows took 24 GB.
CHUNK_ROWS = 10_000
OUTCOME_COLUMNS = ["completed", "completed_on_time", "duration_hours", "reassigned", "slip_ratio"]


def managers_since(history: pd.DataFrame, min_assignments: int) -> pd.DataFrame:
    """``user_id, manager_since, manager_until``: who only hands out work, and when.

    A user becomes a manager once they have assigned tasks to *other people* ``min_assignments`` times,
    and stops being one the first time a task is assigned to them: in real trackers leads and
    reporters hand out work *and* take it, and excluding everyone who ever assigned someone else
    would exclude most of the people who do the work. Self-assignment never counts.
    ``min_assignments`` 0 makes nobody a manager.
    """
    empty = pd.DataFrame({"user_id": pd.Series(dtype=object), "manager_since": pd.Series(dtype=TS_DTYPE),
                          "manager_until": pd.Series(dtype=TS_DTYPE)})
    if min_assignments <= 0:
        return empty
    others = history[history["actor_id"].notna() & (history["actor_id"] != history["assignee_id"])]
    others = others.sort_values("occurred_at", kind="mergesort")
    nth = others[others.groupby("actor_id", sort=False).cumcount() == min_assignments - 1]
    managers = nth[["actor_id", "occurred_at"]].rename(columns={"actor_id": "user_id", "occurred_at": "manager_since"})
    took = history.groupby("assignee_id")["occurred_at"].min().rename("manager_until")
    managers = managers.merge(took, left_on="user_id", right_index=True, how="left")
    # Someone who took work before handing any out never counts as a manager.
    managers = managers[managers["manager_until"].isna() | (managers["manager_until"] > managers["manager_since"])]
    return managers.reset_index(drop=True) if len(managers) else empty


def _decisions(
    lake_uri: str, start: pd.Timestamp, end: pd.Timestamp, manager_min_assignments: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assignment events in ``[start, end)`` with their task's project and team, and when each manager became one."""
    history = assignment_history(lake_uri, start, end)
    managers = managers_since(history, manager_min_assignments)
    decisions = history[(history["occurred_at"] >= start) & (history["occurred_at"] < end)]
    tasks = to_frame(lake.read_state(lake_uri, "tasks").select(["task_id", "project_id", "reporter_id"]))
    projects = to_frame(lake.read_state(lake_uri, "projects").select(["project_id", "team_id"]))
    decisions = decisions.merge(tasks, on="task_id", how="inner").merge(projects, on="project_id", how="inner")
    decisions = decisions.sort_values(["occurred_at", "event_id"], kind="mergesort").reset_index(drop=True)
    decisions["decision_id"] = decisions["event_id"]
    return decisions, managers


def _finish_entities(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns={"occurred_at": "assigned_at"})
    frame["assigned_at"] = frame["assigned_at"].astype(TS_DTYPE)
    frame[TIMESTAMP_COLUMN] = frame["assigned_at"] - DECISION_LEAD
    frame[REQUEST_TIME_FIELD] = (frame[TIMESTAMP_COLUMN].astype("int64") // 1_000_000_000).astype("int64")
    return frame


def eligible_candidates(requests: pd.DataFrame, users: pd.DataFrame, managers: pd.DataFrame) -> pd.DataFrame:
    """The candidate rule, the one place it is defined: ``requests`` (one row per decision or open task, with
    ``team_id`` and the moment ``occurred_at``) joined with every eligible candidate ``user_id``.

    The candidates are the members of the task's project's team who had joined and not left at that moment,
    minus those who, at that moment, hand out work and have never taken any (``managers_since``). Training
    sets (``ranking_entities``) and scoring (``maestro_ml.scoring``) both call it, so a model is served on
    exactly the candidates it was trained and evaluated on.
    """
    pairs = requests.merge(users[["user_id", "team_id", "joined_at", "left_at"]], on="team_id", how="inner")
    pairs = pairs.merge(managers, on="user_id", how="left")
    eligible = pairs["joined_at"].notna() & (pairs["joined_at"] <= pairs["occurred_at"])
    eligible &= pairs["left_at"].isna() | (pairs["left_at"] > pairs["occurred_at"])
    managing = (pairs["manager_since"] < pairs["occurred_at"]) & ~(pairs["manager_until"] < pairs["occurred_at"])
    eligible &= ~managing.fillna(False).astype(bool)
    return pairs.loc[eligible, [*requests.columns, "user_id"]]


def assignment_history(lake_uri: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """``task_assigned`` events in ``[start - LOOKBACK, end)``: the decisions and who managed when."""
    cols = ["event_id", "occurred_at", "actor_id", "task_id", "assignee_id"]
    return to_frame(
        lake.read_events(lake_uri, "task_assigned", (start - pd.Timedelta(LOOKBACK)).to_pydatetime(),
                         end.to_pydatetime(), columns=cols)
    )


def ranking_entities(
    lake_uri: str,
    start: datetime | str,
    end: datetime | str,
    *,
    max_candidates: int | None = None,
    seed: int = 0,
    add_chosen: bool = False,
    manager_min_assignments: int = 1,
) -> pd.DataFrame:
    """One row per (decision, candidate) for the decisions in ``[start, end)``; ``chosen`` marks the pick.

    The candidates are ``eligible_candidates``'s at the decision. A decision
    whose actual assignee is not a candidate keeps its candidates and no chosen row: evaluation
    counts it as a miss and reports the rule's coverage. ``add_chosen`` adds the assignee back as a
    candidate (for a training split only, behind a flag; never for evaluation).

    With ``max_candidates``, a decision with more candidates keeps the chosen one plus a seeded sample.
    """
    lo, hi = utc_timestamp(start), utc_timestamp(end)
    decisions, managers = _decisions(lake_uri, lo, hi, manager_min_assignments)
    users = to_frame(lake.read_state(lake_uri, "users").select(["user_id", "team_id", "joined_at", "left_at"]))
    requests = decisions[["decision_id", "task_id", "project_id", "reporter_id", "team_id", "occurred_at",
                          "assignee_id"]]
    columns = ["decision_id", "task_id", "project_id", "reporter_id", "occurred_at", "assignee_id", "user_id"]
    parts = [eligible_candidates(requests, users, managers)[columns]]
    if add_chosen:
        parts.append(decisions[columns[:-1]].assign(user_id=decisions["assignee_id"]))
    frame = pd.concat(parts, ignore_index=True).drop_duplicates(["decision_id", "user_id"])
    frame["chosen"] = (frame["user_id"] == frame["assignee_id"]).astype("int64")
    if max_candidates is not None:
        rng = np.random.default_rng(seed)
        frame = frame.assign(_r=rng.random(len(frame)))
        frame["_r"] = frame["_r"].where(frame["chosen"] == 0, -1.0)  # the chosen one sorts first, always kept
        frame = frame.sort_values(["decision_id", "_r"], kind="mergesort")
        frame = frame[frame.groupby("decision_id").cumcount() < max_candidates].drop(columns="_r")
    frame = frame.sort_values(["occurred_at", "decision_id", "user_id"], kind="mergesort").reset_index(drop=True)
    return _finish_entities(frame)[[*ENTITY_COLUMNS, "chosen"]]


def duration_entities(lake_uri: str, features_uri: str, start: datetime | str, end: datetime | str,
                      completed_only: bool = True) -> pd.DataFrame:
    """One row per assignment started in ``[start, end)`` that was completed by that assignee (every assignment
    with ``completed_only=False``: what is served, before anyone knows which will finish)."""
    lo, hi = utc_timestamp(start), utc_timestamp(end)
    decisions, _ = _decisions(lake_uri, lo, hi)
    decisions = decisions.assign(
        user_id=decisions["assignee_id"],
        assigned_at_unix=decisions["occurred_at"].astype("int64") // 1_000_000_000,
    )
    frame = decisions
    if completed_only:
        outcomes = read_view(features_uri, ASSIGNMENTS.name, start=lo.to_pydatetime())
        done = outcomes[outcomes["completed"] == 1][["task_id", "user_id", "assigned_at_unix"]]
        frame = decisions.merge(done, on=["task_id", "user_id", "assigned_at_unix"], how="inner")
    frame = frame.drop_duplicates(["decision_id"]).sort_values(["occurred_at", "decision_id"], kind="mergesort")
    return _finish_entities(frame.reset_index(drop=True))[ENTITY_COLUMNS]


def attach_outcomes(entities: pd.DataFrame, features_uri: str) -> pd.DataFrame:
    """Add the observed outcome of each row's (task, user, assignment) as ``outcome_*`` columns (NaN when none)."""
    outcomes = read_view(features_uri, ASSIGNMENTS.name)
    outcomes = outcomes.drop_duplicates(["task_id", "user_id", "assigned_at_unix"], keep="last")
    keyed = entities.assign(assigned_at_unix=entities["assigned_at"].astype("int64") // 1_000_000_000)
    merged = keyed.merge(
        outcomes[["task_id", "user_id", "assigned_at_unix", *OUTCOME_COLUMNS]].rename(
            columns={c: f"outcome_{c}" for c in OUTCOME_COLUMNS}
        ),
        on=["task_id", "user_id", "assigned_at_unix"],
        how="left",
    )
    return merged.drop(columns="assigned_at_unix")


def _chunks(entities: pd.DataFrame, chunk_rows: int) -> list[pd.DataFrame]:
    """Time-ordered slices of about ``chunk_rows`` rows that never split a decision."""
    sizes = entities.groupby("decision_id", sort=False).size()
    bucket = (sizes.cumsum() - 1) // max(chunk_rows, 1)
    labels = entities["decision_id"].map(bucket)
    return [part.reset_index(drop=True) for _, part in entities.groupby(labels, sort=True)]


def _feast_join(store: FeatureStore, service: Any, lookups: pd.DataFrame) -> pd.DataFrame:
    import dask

    # Arrow-backed ids: dask fingerprints object columns string by string, Arrow ones by buffer.
    sent = lookups.astype({c: "string[pyarrow]" for c in JOIN_KEY_COLUMNS})
    # One thread: the join is pandas work under the GIL, and on two cores threads only add contention.
    with dask.config.set(scheduler="synchronous"):
        features = store.get_historical_features(entity_df=sent, features=service).to_df()
    # A feature named like an entity column (task_features' project_id) comes back a second time as
    # "project_id__"; the entity's own column is the one kept.
    features = features.drop(columns=[c for c in features.columns if c.endswith("__") and c[:-2] in sent.columns])
    features = features.astype({c: object for c in JOIN_KEY_COLUMNS})
    features[TIMESTAMP_COLUMN] = pd.to_datetime(features[TIMESTAMP_COLUMN], utc=True).astype(TS_DTYPE)
    if len(features) > len(lookups):
        raise RuntimeError(f"Feast returned {len(features)} rows for {len(lookups)} distinct lookups")
    if len(features) < len(lookups):
        # Feast 0.67's file store drops an entity row when one of its views has no row inside the TTL
        # (a left join would keep it with nulls). The rows are put back with nulls by the caller.
        log.warning("Feast returned %d of %d lookups; the others get null features", len(features), len(lookups))
    return features


def _historical(store: FeatureStore, service: Any, entities: pd.DataFrame) -> pd.DataFrame:
    """Feast's point-in-time join for these rows, every row kept.

    Feast returns one row per distinct (join keys, timestamp): two decisions that share them (the
    same task offered to the same user at the same instant) would silently come back as one. So
    Feast gets the distinct lookups and the features are joined back onto every entity row.
    """
    keys = [*JOIN_KEY_COLUMNS, TIMESTAMP_COLUMN, REQUEST_TIME_FIELD]
    lookups = entities[keys].drop_duplicates().reset_index(drop=True)
    # Feast 0.67's file store de-duplicates each view's join on (that view's join keys, timestamp), so
    # lookups sharing a key and an instant (every candidate of one decision shares the task and the
    # time) come back as one row. Each lookup at a shared instant is sent a few microseconds apart
    # instead (still well inside DECISION_LEAD, so still before the decision): every sent timestamp
    # is unique, nothing can collapse, and each answer maps back to exactly one lookup.
    offsets = lookups.groupby(TIMESTAMP_COLUMN, sort=False).cumcount()
    if len(offsets) and int(offsets.max()) >= DECISION_LEAD // pd.Timedelta(microseconds=1):
        raise ValueError("more lookups share one instant than there are microseconds in DECISION_LEAD")
    lookups["_sent_at"] = lookups[TIMESTAMP_COLUMN] + pd.to_timedelta(offsets.to_numpy(), unit="us")
    sent = lookups.drop(columns=TIMESTAMP_COLUMN).rename(columns={"_sent_at": TIMESTAMP_COLUMN})
    features = _feast_join(store, service, sent).rename(columns={TIMESTAMP_COLUMN: "_sent_at"})
    features = lookups.merge(
        features.drop(columns=[REQUEST_TIME_FIELD], errors="ignore"),
        on=[*JOIN_KEY_COLUMNS, "_sent_at"],
        how="left",
        validate="one_to_one",
    ).drop(columns="_sent_at")
    merged = entities.merge(features, on=keys, how="left", validate="many_to_one")
    if len(merged) != len(entities):
        raise RuntimeError("joining the features back changed the number of training rows")
    return merged


def training_set(
    kind: TrainingSetKind,
    start: datetime | str,
    end: datetime | str,
    *,
    store: FeatureStore | None = None,
    settings: Settings | None = None,
    feature_service: str | None = None,
    max_rows: int | None = None,
    max_candidates: int | None = None,
    seed: int = 0,
    chunk_rows: int = CHUNK_ROWS,
    engine: JoinEngine = "local",
    add_chosen: bool = False,
    completed_only: bool = True,
) -> pd.DataFrame:
    """A point-in-time-correct training set of ``kind`` for the decisions in ``[start, end)``.

    Ranking sets use the candidate rule of ``ranking_entities`` (``add_chosen`` only for training). Duration
    sets hold completed assignments only, unless ``completed_only`` is False (monitoring's current sample: a
    day's assignments filtered on having finished by now would be its quick ones, and drift for that alone).

    Columns: the entity columns (``decision_id, task_id, user_id, project_id, reporter_id, assigned_at,
    event_timestamp, request_time_unix``; ``chosen`` for ranking), the feature service's features
    (names are unique across views) and ``outcome_*`` labels. ``max_rows`` keeps whole
    decisions drawn at random with ``seed`` (``contracts.training_sets``: a ranking group is never cut).

    ``engine`` picks who executes the point-in-time join of the feature service: ``"local"``
    (``maestro_ml.features.point_in_time``: Feast's definitions and on-demand transformations, the
    join in-process, seconds for a million rows) or ``"feast"`` (``get_historical_features`` on the
    configured offline store; entities go in time-ordered chunks of about ``chunk_rows`` whole
    decisions, so the file store's memory stays bounded). Both give the same rows and values.
    """
    settings = settings or get_settings()
    store = store or get_store(settings)
    started = time.perf_counter()
    if kind == "ranking":
        entities = ranking_entities(settings.lake_uri, start, end, max_candidates=max_candidates, seed=seed,
                                    add_chosen=add_chosen, manager_min_assignments=settings.manager_min_assignments)
    elif kind == "duration":
        entities = duration_entities(settings.lake_uri, settings.features_uri, start, end, completed_only)
    else:
        raise ValueError(f"unknown training-set kind {kind!r}; expected 'ranking' or 'duration'")
    if max_rows is not None and len(entities) > max_rows:
        entities = entities[sample_whole_groups(entities["decision_id"], max_rows, seed)].reset_index(drop=True)
    entities = attach_outcomes(entities, settings.features_uri)
    if entities.empty:
        raise NoDataError(f"no {kind} decisions in [{start}, {end}): nothing to build a training set from; "
                          "are the features of that window built?")
    service = store.get_feature_service(feature_service or FEATURE_SERVICES[kind])
    if engine == "local":
        frame = historical_features(store, service, entities)
    elif engine == "feast":
        frame = pd.concat([_historical(store, service, chunk) for chunk in _chunks(entities, chunk_rows)],
                          ignore_index=True)
    else:
        raise ValueError(f"unknown join engine {engine!r}; expected 'local' or 'feast'")
    order = {name: i for i, name in enumerate(entities.columns)}
    # A set holds what the service serves online and nothing else: Feast's offline join also returns the
    # on-demand transformations' source columns (the title vectors, creation times, project totals), and a
    # model trained on one of them would name an input that scoring's get_online_features never returns.
    served = {f.name for projection in service.feature_view_projections for f in projection.features}
    frame = frame.drop(columns=[c for c in frame.columns
                                if c not in order and (c not in served or c in VECTOR_FEATURES)])
    frame = frame.sort_values(["assigned_at", "decision_id", "user_id"], kind="mergesort").reset_index(drop=True)
    log.info(
        "training set %s [%s, %s) (%s join): %d rows x %d columns in %.1f s",
        kind, start, end, engine, len(frame), frame.shape[1], time.perf_counter() - started,
    )
    first = sorted([c for c in frame.columns if c in order], key=order.__getitem__)
    # Features in name order: both engines, and every build, give the model the same column order.
    return frame[first + sorted(c for c in frame.columns if c not in order)]


def describe(frame: pd.DataFrame) -> dict[str, Any]:
    """A few figures of a training set, for logs and manifests."""
    groups = frame["decision_id"].nunique() if "decision_id" in frame else 0
    return {"rows": len(frame), "groups": int(groups), "columns": frame.shape[1]}
