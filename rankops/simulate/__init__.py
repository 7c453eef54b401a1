"""A simulated marketplace around the running server: outcomes from the generator's truth, days of traffic."""
