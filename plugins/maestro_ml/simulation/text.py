"""Words for names, titles and comments, and the personal data occasionally pasted into them."""

from __future__ import annotations

import numpy as np

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Aiko", "Bruno", "Chen", "Chloe", "Dario", "Dmitri", "Elena", "Emeka",
    "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jonas", "Kai", "Karin", "Lars",
    "Leila", "Liam", "Maya", "Mateo", "Mei", "Nadia", "Noah", "Olga", "Omar", "Priya", "Quinn", "Rafael",
    "Rosa", "Sami", "Sofia", "Tariq", "Tomas", "Uma", "Victor", "Wen", "Yara", "Yusuf", "Zara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abe", "Adeyemi", "Almeida", "Bauer", "Becker", "Chowdhury", "Costa", "Dubois", "Eriksson", "Fischer",
    "Garcia", "Haddad", "Ivanova", "Jensen", "Kim", "Kowalski", "Kumar", "Larsen", "Lopez", "Mensah",
    "Moreau", "Nakamura", "Novak", "Okafor", "Olsen", "Park", "Petrov", "Quispe", "Rossi", "Santos",
    "Schmidt", "Silva", "Singh", "Tanaka", "Torres", "Ueda", "Varga", "Wang", "Weber", "Yilmaz", "Zhang",
)  # fmt: skip

PROJECT_ADJECTIVES = (
    "Amber", "Blue", "Bright", "Copper", "Crimson", "Golden", "Hidden", "Iron", "Jade", "Lunar", "Northern",
    "Quiet", "Rapid", "Silver", "Solar", "Swift", "Violet", "Wild",
)  # fmt: skip
PROJECT_NOUNS = (
    "Atlas", "Beacon", "Comet", "Delta", "Ember", "Falcon", "Harbor", "Horizon", "Kestrel", "Lighthouse",
    "Meridian", "Nimbus", "Orbit", "Pioneer", "Quartz", "Summit", "Tundra", "Voyager",
)  # fmt: skip

TITLE_VERBS = (
    "Fix", "Add", "Refactor", "Investigate", "Document", "Migrate", "Review", "Speed up", "Test", "Design",
    "Clean up", "Upgrade", "Monitor", "Prototype",
)  # fmt: skip
# One vocabulary per skill in events.SKILL_NAMES order: titles talk about the task's main skill.
SKILL_OBJECTS: tuple[tuple[str, ...], ...] = (
    ("the orders API", "the billing service", "rate limiting", "the payments webhook", "the search endpoint"),
    ("the settings page", "the dashboard layout", "form validation", "the onboarding flow", "dark mode"),
    ("the iOS login screen", "Android push notifications", "offline sync", "the mobile share sheet"),
    ("the nightly ETL", "the events warehouse table", "the revenue report", "schema migrations"),
    ("the ranking model", "feature drift alerts", "the churn model", "training data sampling"),
    ("the CI pipeline", "the staging cluster", "the deploy scripts", "log retention", "autoscaling"),
    ("the SSO integration", "dependency CVEs", "access reviews", "secret rotation", "audit logging"),
    ("the icon set", "the empty states", "the pricing page mockups", "the design tokens"),
    ("the regression suite", "flaky end-to-end tests", "the release checklist", "load tests"),
    ("the API reference", "the release notes", "the help center article", "the runbook"),
    ("the Q3 roadmap", "the pricing experiment", "customer interview notes", "the feature spec"),
    ("the escalation queue", "ticket triage", "the support macros", "the status page"),
)

COMMENTS = (
    "Looks good to me, merging after CI passes.",
    "Blocked on {obj}, waiting for a review.",
    "Can we pair on this tomorrow morning?",
    "Pushed a fix for {obj}, please re-test.",
    "The estimate was off: {obj} is bigger than expected.",
    "Moved to review, notes are in the PR.",
    "A customer reported this again today.",
    "Need input from design before continuing.",
    "Updated the docs for {obj}.",
    "Reproduced locally; the root cause is in {obj}.",
    "Splitting this up, {obj} will be a follow-up.",
    "Done on my side, over to QA.",
    "Any update here? This is on the release list.",
    "Added tests around {obj}.",
    "Rolled back the change to {obj} for now.",
)

EMAIL_DOMAINS = ("example.com", "mail.example.org", "customer.example.net", "gmail.example.com")
PII_EMAIL_TEMPLATES = (
    "Ping me at {email} if stuck.",
    "The customer contact is {email}.",
    "Forwarding the thread from {email}.",
)
PII_PHONE_TEMPLATES = (
    "Call the customer on {phone}.",
    "My cell is {phone} if this escalates.",
    "Support line for this client: {phone}.",
)
PII_BOTH_TEMPLATES = ("Reach {name} at {email} or {phone}.",)
PII_TITLE_TEMPLATES = ("call back {phone}", "reply to {email}")


def person_name(first: int, last: int) -> str:
    return f"{FIRST_NAMES[first % len(FIRST_NAMES)]} {LAST_NAMES[last % len(LAST_NAMES)]}"


def work_email(first: int, last: int, serial: int) -> str:
    f = FIRST_NAMES[first % len(FIRST_NAMES)].lower()
    la = LAST_NAMES[last % len(LAST_NAMES)].lower()
    return f"{f}.{la}{serial}@maestro-corp.example"


def project_name(a: int, b: int, serial: int) -> str:
    return f"{PROJECT_ADJECTIVES[a % len(PROJECT_ADJECTIVES)]} {PROJECT_NOUNS[b % len(PROJECT_NOUNS)]} {serial}"


def _email(r: np.ndarray) -> str:
    f = FIRST_NAMES[int(r[0]) % len(FIRST_NAMES)].lower()
    la = LAST_NAMES[int(r[1]) % len(LAST_NAMES)].lower()
    return f"{f}.{la}{int(r[2]) % 100}@{EMAIL_DOMAINS[int(r[3]) % len(EMAIL_DOMAINS)]}"


def _phone(r: np.ndarray) -> str:
    a, b, c = int(r[4]) % 800 + 200, int(r[5]) % 900 + 100, int(r[6]) % 10000
    style = int(r[7]) % 4
    if style == 0:
        return f"+1 {a} {b} {c:04d}"
    if style == 1:
        return f"({a}) {b}-{c:04d}"
    if style == 2:
        return f"+44 20 {b}{c % 10} {c:04d}"
    return f"+1-{a}-{b}-{c:04d}"


def pii_sentence(r: np.ndarray) -> tuple[str, list[str]]:
    """A sentence with an email and/or a phone number, and the PII strings it contains."""
    kind = int(r[8]) % 5
    email, phone = _email(r), _phone(r)
    if kind <= 1:
        return PII_EMAIL_TEMPLATES[int(r[9]) % len(PII_EMAIL_TEMPLATES)].format(email=email), [email]
    if kind <= 3:
        return PII_PHONE_TEMPLATES[int(r[9]) % len(PII_PHONE_TEMPLATES)].format(phone=phone), [phone]
    name = person_name(int(r[0]), int(r[1]))
    return PII_BOTH_TEMPLATES[0].format(name=name, email=email, phone=phone), [email, phone]


def pii_title_suffix(r: np.ndarray) -> tuple[str, list[str]]:
    if int(r[8]) % 2:
        email = _email(r)
        return PII_TITLE_TEMPLATES[1].format(email=email), [email]
    phone = _phone(r)
    return PII_TITLE_TEMPLATES[0].format(phone=phone), [phone]


def task_title(verb: int, skill: int, obj: int, serial: int) -> str:
    objects = SKILL_OBJECTS[skill]
    return f"{TITLE_VERBS[verb % len(TITLE_VERBS)]} {objects[obj % len(objects)]} (#{serial})"


def comment_text(template: int, skill: int, obj: int) -> str:
    objects = SKILL_OBJECTS[skill]
    return COMMENTS[template % len(COMMENTS)].format(obj=objects[obj % len(objects)])


# --- the tracker preset: components, specialties and generic bug-report words ---
# Component vocabularies are drawn from this pool (disjoint within a product), so a title's words
# say which component (project) it belongs to.
COMPONENT_POOL = (
    "scheduler", "executor", "worker", "queue", "broker", "backfill", "trigger", "sensor", "operator", "hook",
    "webserver", "gunicorn", "login", "session", "cookie", "csrf", "oauth", "ldap", "kerberos", "token",
    "grid", "graph", "gantt", "tooltip", "modal", "sidebar", "navbar", "breadcrumb", "pagination", "datepicker",
    "parser", "lexer", "tokenizer", "ast", "linter", "formatter", "compiler", "bytecode", "interpreter", "macro",
    "pool", "slot", "lock", "mutex", "semaphore", "heartbeat", "lease", "quorum", "leader", "election",
    "bucket", "blob", "multipart", "presigned", "upload", "download", "checksum", "etag", "glacier", "lifecycle",
    "postgres", "mysql", "sqlite", "migration", "alembic", "orm", "index", "vacuum", "deadlock", "replica",
    "kubernetes", "pod", "helm", "chart", "ingress", "configmap", "secret", "volume", "namespace", "sidecar",
    "docker", "image", "layer", "registry", "entrypoint", "healthcheck", "compose", "buildkit", "dockerfile", "tag",
    "logging", "logger", "handler", "rotation", "syslog", "stackdriver", "cloudwatch", "elasticsearch", "kibana",
    "metrics", "statsd", "prometheus", "gauge", "counter", "histogram", "exporter", "grafana", "dashboard", "alert",
    "api", "endpoint", "openapi", "swagger", "pagination_cursor", "ratelimit", "webhook", "callback", "payload",
    "cli", "argparse", "subcommand", "completion", "prompt", "flag", "stdin", "stdout", "exitcode", "shell",
    "plugin", "provider", "extension", "entrypoint_group", "registry_entry", "loader", "discovery", "manifest",
    "serializer", "pickle", "json", "yaml", "protobuf", "avro", "parquet", "arrow", "msgpack", "schema",
    "cache", "redis", "memcached", "ttl", "eviction", "warmup", "invalidation", "stampede", "shard", "hashring",
    "email", "smtp", "sendgrid", "template", "jinja", "render", "macro_filter", "variable", "connection", "xcom",
    "timezone", "pendulum", "cron", "interval", "dataset", "asset", "catchup", "dagrun", "taskinstance", "retry",
    "docs", "tutorial", "howto", "changelog", "readme", "sphinx", "docstring", "example", "glossary", "faq",
    "test", "pytest", "fixture", "mock", "coverage", "tox", "nox", "ci", "workflow", "matrix",
    "packaging", "wheel", "sdist", "setuptools", "constraints", "pip", "poetry", "hatch", "extras", "pin",
    "security", "cve", "rbac", "permission", "role", "audit", "sandbox", "xss", "injection", "sanitizer",
    "i18n", "translation", "locale", "gettext", "rtl", "unicode", "encoding", "charset", "emoji", "collation",
    "android", "ios", "swift", "kotlin", "gradle", "xcode", "simulator", "push", "deeplink", "biometric",
)  # fmt: skip
# Specialties (topics): what kind of problem a person handles best, a few words each.
TOPIC_POOL = (
    "crash", "segfault", "panic", "traceback", "memory", "leak", "oom", "heap",
    "slow", "latency", "performance", "throughput", "timeout", "hang", "freeze", "stall",
    "race", "flaky", "intermittent", "concurrency", "upgrade", "deprecation", "compatibility", "breaking",
    "typo", "wording", "docs_link", "screenshot", "layout", "css", "alignment", "dark_theme",
    "regression", "bisect", "rollback", "revert", "config", "default", "env_var", "setting",
    "auth", "credentials", "expired", "refresh", "windows", "macos", "arm64", "python312",
    "large", "overflow", "precision", "rounding", "duplicate", "missing", "stale", "orphan",
    "retry_storm", "backoff", "reconnect", "keepalive", "accessibility", "keyboard", "screenreader", "contrast",
    "packaging_error", "import_error", "circular", "version_pin", "logging_noise", "verbose", "warning", "silence",
)  # fmt: skip
GENERIC_WORDS = (
    "when", "after", "fails", "error", "wrong", "should", "support", "option", "broken", "incorrect",
    "not", "working", "unable", "cannot", "does", "with", "using", "on", "for", "in",
    "randomly", "sometimes", "always", "new", "old", "second", "empty", "invalid", "unexpected", "behaviour",
)  # fmt: skip
TRACKER_VERBS = ("Fix", "Add", "Improve", "Support", "Handle", "Update", "Remove", "Allow", "Bug:", "Feature:")
COMPONENT_SUFFIXES = ("core", "ui", "api", "cli", "docs", "infra", "sdk", "integration")


def component_name(product: str, first_word: str, suffix: int) -> str:
    return f"{product} {first_word.replace('_', ' ')} {COMPONENT_SUFFIXES[suffix % len(COMPONENT_SUFFIXES)]}"


def tracker_title(verb: int, words: list[str], serial: int) -> str:
    """A bug-report title: a verb, then the words in the order drawn (underscores read as spaces)."""
    body = " ".join(w.replace("_", " ") for w in words)
    return f"{TRACKER_VERBS[verb % len(TRACKER_VERBS)]} {body} (#{serial})"


def tracker_comment(template: int, words: tuple[str, ...], obj: int) -> str:
    return COMMENTS[template % len(COMMENTS)].format(obj="the " + words[obj % len(words)].replace("_", " "))
