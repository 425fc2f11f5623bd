/// The SSH bastion (see BastionServer).
