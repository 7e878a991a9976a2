"""Who is asking: the operator's session or an API token, and what each may do."""
