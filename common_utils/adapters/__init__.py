"""Course-written PEFT methods that peft does not provide (bottleneck adapters, BitFit)."""
