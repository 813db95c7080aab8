"""External identities' adapter: JWT verification with PyJWT against a configured public key or JWKS file, and
the rules file. The rules themselves and the mapping to an ``Identity`` are pure, in ``lfsd.core.external``."""
