"""Rate limiters: how many requests an identity may make, per quota, in one process
(`MemoryRateLimiter`) or shared by every replica through Redis (`RedisRateLimiter`). Both
run the same algorithm (`gcra`)."""
