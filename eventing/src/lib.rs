//! Zeroscale eventing core: everything Triggers need that does not depend on the activator's or the
//! operator's internals. See `docs/eventing.md`.
