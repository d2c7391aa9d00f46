"""caffeconf's public Python API; re-exported from `caffeconf`."""
