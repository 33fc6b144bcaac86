//! The IBA queue pair state machine (IBA Vol 1 ch. 10, QP states; as rxe_qp.c
//! enforces it): which `modify` transitions are legal.

use core::fmt;

/// A queue pair's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QpState {
    /// Created or reset: nothing is processed, queues are empty.
    #[default]
    Reset,
    /// Receives may be posted; nothing goes on the wire.
    Init,
    /// Ready to receive: the responder runs.
    Rtr,
    /// Ready to send: requester and responder run.
    Rts,
    /// Send queue drain: no new send work request is started.
    Sqd,
    /// Send queue error (UC/UD in IBA; kept for the full state set).
    Sqe,
    /// Error: every work request is flushed, nothing is processed.
    Error,
}

/// A `modify` asked for a transition IBA does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IllegalTransition {
    /// The state the QP was in.
    pub from: QpState,
    /// The state asked for.
    pub to: QpState,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "illegal QP transition {:?} -> {:?}", self.from, self.to)
    }
}

impl QpState {
    /// Every state.
    pub const ALL: [QpState; 7] = [
        QpState::Reset,
        QpState::Init,
        QpState::Rtr,
        QpState::Rts,
        QpState::Sqd,
        QpState::Sqe,
        QpState::Error,
    ];

    /// The one transition function: `Ok(to)` for a legal transition.
    /// Legal: Reset->Init, Init->Init, Init->Rtr, Rtr->Rts, Rts->Rts,
    /// Rts->Sqd, Sqd->Rts, Sqd->Sqd, Sqe->Rts, any->Reset, any->Error.
    pub const fn transition(self, to: QpState) -> Result<QpState, IllegalTransition> {
        use QpState::*;
        let ok = matches!(
            (self, to),
            (_, Reset)
                | (_, Error)
                | (Reset, Init)
                | (Init, Init)
                | (Init, Rtr)
                | (Rtr, Rts)
                | (Rts, Rts)
                | (Rts, Sqd)
                | (Sqd, Rts)
                | (Sqd, Sqd)
                | (Sqe, Rts)
        );
        if ok {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// The responder accepts requests (IBA: RTR and later, not Error).
    pub const fn can_receive(self) -> bool {
        matches!(
            self,
            QpState::Rtr | QpState::Rts | QpState::Sqd | QpState::Sqe
        )
    }

    /// Receive work requests may be posted.
    pub const fn can_post_recv(self) -> bool {
        !matches!(self, QpState::Reset)
    }

    /// Send work requests may be posted (in Sqe/Error they are flushed).
    pub const fn can_post_send(self) -> bool {
        matches!(
            self,
            QpState::Rts | QpState::Sqd | QpState::Sqe | QpState::Error
        )
    }
}

#[cfg(test)]
mod tests {
    use super::QpState::*;
    use super::*;

    const LEGAL: &[(QpState, QpState)] = &[
        (Reset, Init),
        (Init, Init),
        (Init, Rtr),
        (Rtr, Rts),
        (Rts, Rts),
        (Rts, Sqd),
        (Sqd, Rts),
        (Sqd, Sqd),
        (Sqe, Rts),
    ];

    #[test]
    fn every_pair_is_legal_exactly_when_listed() {
        let mut legal = 0;
        for from in QpState::ALL {
            for to in QpState::ALL {
                let expect = to == Reset || to == Error || LEGAL.contains(&(from, to));
                match from.transition(to) {
                    Ok(s) => {
                        assert!(expect, "{from:?} -> {to:?} should be illegal");
                        assert_eq!(s, to);
                        legal += 1;
                    }
                    Err(e) => {
                        assert!(!expect, "{from:?} -> {to:?} should be legal");
                        assert_eq!(e, IllegalTransition { from, to });
                    }
                }
            }
        }
        // 7 to Reset + 7 to Error + 9 listed.
        assert_eq!(legal, 23);
    }

    #[test]
    fn some_illegal_ones_by_name() {
        assert!(Reset.transition(Rtr).is_err());
        assert!(Reset.transition(Rts).is_err());
        assert!(Init.transition(Rts).is_err());
        assert!(Rtr.transition(Rtr).is_err());
        assert!(Rtr.transition(Init).is_err());
        assert!(Error.transition(Rts).is_err());
        assert!(Error.transition(Init).is_err());
        assert!(Rts.transition(Sqe).is_err());
        assert!(Sqe.transition(Sqd).is_err());
    }

    #[test]
    fn capabilities() {
        assert!(!Reset.can_post_recv());
        assert!(Init.can_post_recv());
        assert!(!Init.can_post_send());
        assert!(!Rtr.can_post_send());
        assert!(Rts.can_post_send());
        assert!(!Init.can_receive());
        assert!(Rtr.can_receive());
        assert!(!Error.can_receive());
    }
}
