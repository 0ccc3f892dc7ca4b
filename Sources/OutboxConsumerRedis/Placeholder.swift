// Placeholder: replaced by the Redis Streams source.
