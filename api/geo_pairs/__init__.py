"""Matched-pair geo designs: `POST /v1/geo/matched-pairs` and experiments made of them."""
