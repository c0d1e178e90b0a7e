"""Server-sent events: the journal that orders message creations, and the hub that fans the change
feed out to subscribers."""
