"""kyc-tier's flows: one module per group of routes, each an async class the
servicers call (convert -> flow -> convert), each answering with its own
small result type.

    pipeline.py   attempt -> assess -> decide -> record -> seal -> audit,
                  shared by every verification flow below
    step_up.py    step-up (the decision is a pure function, `decide`)
    face.py       face liveness, face match, flash challenges, enrollments
    ktp.py        KTP challenge and capture (with replay of the same bundle)
    dukcapil.py   a Dukcapil verdict as signed evidence
    customers.py  creating, listing, reading customers
    erasure.py    erasing a customer
    kyc.py        KYC status, upgrade, the attempt history
    devices.py    SDK devices and capture challenges
    api_keys.py   partner API keys
    biometrics.py what the face flows share (reasons, scores, matching)

Flows own their transactions (`store.Store`); what they need of the other
services is in `ports/`, wired in `bootstrap.build`.
"""
