"""cfn-lint rules for Org::ECS::TaskRun and Org::ECS::ServiceRestart (see rules.py).

    cfn-lint --append-rules cfn/cfnlint_taskrun -- template.yaml

`--append-rules` with a directory imports each rule file in it on its own; this
__init__ only serves `--append-rules cfnlint_taskrun` (a module name, with cfn/ on
PYTHONPATH), for which cfn-lint takes the rule classes found in the package.
"""

from .rules import (  # noqa: F401
    AnyOfRule,
    BadLength,
    MissingRequired,
    NoMatch,
    NotAllowed,
    NotUnique,
    OutOfRange,
    ReadOnlyProperty,
    RegistryTypeProperties,
    UnknownAttribute,
    UnknownProperty,
    WrongType,
)
