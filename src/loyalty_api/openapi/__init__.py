"""The published contract: the OpenAPI document, its operation ids and its examples."""
