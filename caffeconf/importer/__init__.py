"""Caffe prototxt / binary -> caffeconf config: read and verify the net, factor repeated blocks
into modules, write YAML or TOML text."""
