"""cfn-lint (1.58.0) with registry schemas that are really applied.

`cfn-lint --registry-schemas DIR` loads the schemas, so the type is known (no E3006),
but 1.58.0 then validates no property of a registry type: the property rules (E3002,
E3003, E3012, E3030, ...) look schemas up through
SchemaManager.get_resource_schemas_by_regions(), which only consults the bundled
AWS provider schemas and so yields nothing for a registry type. This wrapper makes
that method yield the registry schema too, then runs cfn-lint's own CLI unchanged.

    python cfn/cfn_lint_strict.py --registry-schemas cfn/registry-schemas -- template.yaml
"""
import sys

from cfnlint.schema.manager import ProviderSchemaManager

_original = ProviderSchemaManager.get_resource_schemas_by_regions


def _get_resource_schemas_by_regions(self, resource_type, regions):
    registry = getattr(self, "_registry_schemas", {})
    if resource_type in registry:
        yield list(regions), registry[resource_type]
        return
    yield from _original(self, resource_type, regions)


ProviderSchemaManager.get_resource_schemas_by_regions = _get_resource_schemas_by_regions

if __name__ == "__main__":
    from cfnlint.runner import main  # pylint: disable=import-outside-toplevel

    sys.exit(main())
