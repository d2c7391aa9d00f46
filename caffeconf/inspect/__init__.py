"""Flat Net -> what people read about it: shapes, costs and memory, drawings, differences."""
