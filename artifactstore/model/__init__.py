"""The data model: manifests as trees of directory nodes, version records and aliases."""
