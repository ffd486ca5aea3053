"""The Indonesian KTP: NIK structure and region codes, card fields."""
