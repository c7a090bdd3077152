//! Simulated cluster: controllers, kubelet, roles, cert-manager stand-in.
