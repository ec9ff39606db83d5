"""Entities: the join keys every Maestro feature hangs off."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A person who can be assigned tasks.",
    tags={"owner": "ml-platform"},
)
task = Entity(
    name="task",
    join_keys=["task_id"],
    value_type=ValueType.STRING,
    description="A unit of work inside a project.",
    tags={"owner": "ml-platform"},
)
project = Entity(
    name="project",
    join_keys=["project_id"],
    value_type=ValueType.STRING,
    description="A body of work owned by one team.",
    tags={"owner": "ml-platform"},
)
team = Entity(
    name="team",
    join_keys=["team_id"],
    value_type=ValueType.STRING,
    description="A group of users that owns projects.",
    tags={"owner": "ml-platform"},
)
reporter = Entity(
    name="reporter",
    join_keys=["reporter_id"],
    value_type=ValueType.STRING,
    description="The user who filed a task (the actor of its task_created).",
    tags={"owner": "ml-platform"},
)
