"""Protocol front ends: each parses its wire format into one request type and encodes one answer type."""
