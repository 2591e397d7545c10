"""The class server and its ledger (api over a wire): ``python -m bbtkit serve``. Its client is
``bk.connect`` in the api layer, so that every method runs against a server without knowing it."""
