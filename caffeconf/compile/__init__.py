"""Config source -> flat Net: located tree (YAML/TOML), syntax, imports, checks, expressions,
field types, rules, resolution and verification; `load` is the one front door for any net."""
