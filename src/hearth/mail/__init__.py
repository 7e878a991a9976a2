"""Mail: the ``mail`` health check over Gmail OAuth (``gmail.py``) and generic IMAP
(``imap.py``); ``adapter.py`` chooses and combines them from the settings."""
