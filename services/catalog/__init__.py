"""catalog: products, prices and stock from 1C (CommerceML 2)."""
