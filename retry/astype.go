package retry

// asType finds the first error in err's tree that matches T, as errors.AsType does
// (Go 1.26; this module supports Go 1.25): it walks Unwrap() error and
// Unwrap() []error depth first, and honours an error's own As method. Unlike
// errors.As it takes no pointer to a caller's local, so a lookup that finds nothing
// allocates nothing (the target of an As method is allocated only when one is called).
func asType[T error](err error) (T, bool) {
	for err != nil {
		if t, ok := err.(T); ok {
			return t, true
		}
		if x, ok := err.(interface{ As(any) bool }); ok {
			var t T
			if x.As(&t) {
				return t, true
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if t, ok := asType[T](e); ok {
					return t, true
				}
			}
			return *new(T), false
		default:
			return *new(T), false
		}
	}
	return *new(T), false
}
