"""The training loop and what it needs: run resumption, dtype policies, interrupts, the
gradient registry."""
