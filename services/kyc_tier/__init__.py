"""kyc-tier: customers, verifications, KYC tiers, partner keys; orchestrates the mesh."""
