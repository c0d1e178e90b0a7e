"""HTTP handlers, thin: parse the request, call the repository, write the response."""
