"""Output formats for findings: JSON (keelwatch's own), SARIF 2.1.0, CycloneDX 1.6 VEX.

Thin adapters over stored findings: nothing in the library imports them.
"""
