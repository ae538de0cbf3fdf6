"""
The domain model and its errors: leaf modules that import nothing of ours,
so every layer (store, service, API, dialects) can share them.
"""
