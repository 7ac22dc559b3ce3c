"""field_node package."""
