"""Model handling and face inference: manifests, runners, detection, quality, alignment,
PAD, embeddings.
"""
