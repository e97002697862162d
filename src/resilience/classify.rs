//! How the executor learns what an error means, without knowing its type.

/// Classification of an operation's error, implemented by the layer that owns
/// the error type (for DICOM: the client, following the "What is retried"
/// table of the interface spec).
///
/// The two questions are independent: a DIMSE A7xx "out of resources" is
/// retryable and says the node is struggling (counts), while a permanent
/// A-ASSOCIATE-RJ for an unknown AE title is neither retried nor a sign that
/// the node is down, and an unreadable input file says nothing about the node.
pub trait Classify {
    /// Whether another attempt may succeed where this one failed.
    fn is_retryable(&self) -> bool;

    /// Whether this failure is evidence that the node is unhealthy, and so
    /// counts towards opening its circuit breaker.
    fn counts_for_breaker(&self) -> bool;

    /// Whether the node could not be reached at all (connection refused, host
    /// name that does not resolve): with [`Executor::set_quick_unreachable`]
    /// (one-shot commands), such a failure gets one quick retry at most.
    ///
    /// [`Executor::set_quick_unreachable`]: super::Executor::set_quick_unreachable
    fn is_unreachable(&self) -> bool {
        false
    }
}

impl<T: Classify + ?Sized> Classify for &T {
    fn is_retryable(&self) -> bool {
        (**self).is_retryable()
    }

    fn counts_for_breaker(&self) -> bool {
        (**self).counts_for_breaker()
    }

    fn is_unreachable(&self) -> bool {
        (**self).is_unreachable()
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn is_retryable(&self) -> bool {
        (**self).is_retryable()
    }

    fn counts_for_breaker(&self) -> bool {
        (**self).counts_for_breaker()
    }

    fn is_unreachable(&self) -> bool {
        (**self).is_unreachable()
    }
}
