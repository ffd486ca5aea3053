"""Limits of a capture bundle, the same for every service that reads one."""

# Frames in one capture bundle (a flash sequence of at most six colours, with
# unflashed baselines): kyc-tier refuses a bundle with more, capture-quality
# and liveness a request with more.
MAX_FRAMES = 16
