"""central_hub package."""
