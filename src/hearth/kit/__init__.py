"""Hearth's lowest room: small types and helpers every concern may import, importing no
concern themselves (check results, URL masking, one-line error reasons)."""
