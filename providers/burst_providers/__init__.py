"""burst's providers, one package each, registered in the `burst.providers` entry-point group."""
