"""Object stores (implementations of ``lfsd.core.ports.ObjectStore``) and their building blocks."""
