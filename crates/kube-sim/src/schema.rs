//! OpenAPI v3 schema validation, pruning, defaulting and CEL rules for custom resources.
