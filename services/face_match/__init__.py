"""Face Match (seed 002): asynchronous, document-agnostic 1:1 face matching
for partners' backends."""
