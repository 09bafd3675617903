package template

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file estimates, before anything is allocated, how many bytes fmt
// or encoding/json will produce for a value. Estimates are upper bounds
// (exact for strings) and stop early once they pass what is left of the
// budget, so estimating a huge value is cheap too.

// maxDepth bounds how deep an estimate follows nested values.
const maxDepth = 10_000

// spec is one printf verb with its flags.
type spec struct {
	verb         rune
	plus, sharp  bool
	space        bool
	width, prec  int
	hasPrecision bool
}

// vspec is %v, the way print, println, join and printing format values.
var vspec = spec{verb: 'v'}

// sizer accumulates an estimate. It stops once n exceeds limit.
type sizer struct {
	n, limit int
	alloc    int // bytes allocated besides the result (map sorting)
	visited  int
}

func (z *sizer) add(k int) bool {
	z.n += k
	return z.n <= z.limit
}

func (z *sizer) over() bool { return z.n > z.limit }

// newSizer returns a sizer bounded by what is left of the output.
func newSizer(st *execState) *sizer {
	return &sizer{limit: max(st.maxOut-st.written, 0)}
}

// finish charges the estimate's own work and reports its result.
func (z *sizer) finish(st *execState) (int, error) {
	if err := st.step(1 + z.visited/8 + z.alloc/bytesPerStep); err != nil {
		return 0, err
	}
	return z.n, nil
}

// fmtSize bounds fmt.Sprint(v).
func fmtSize(st *execState, v any) (int, error) {
	z := newSizer(st)
	z.fmtValue(reflect.ValueOf(v), vspec, 0)
	return z.finish(st)
}

// stringFactor bounds how much a verb can grow each byte of a string.
func (s spec) stringFactor() int {
	switch s.verb {
	case 'q':
		return 4 // \x01
	case 'x', 'X':
		switch {
		case s.space && s.sharp:
			return 5 // 0x41 per byte
		case s.space:
			return 3
		}
		return 2
	case 'v':
		if s.sharp {
			return 4 // Go syntax: quoted
		}
	}
	return 1
}

var (
	stringerType      = reflect.TypeFor[fmt.Stringer]()
	errorType         = reflect.TypeFor[error]()
	formatterType     = reflect.TypeFor[fmt.Formatter]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// fmtValue adds a bound for fmt formatting v with s. Values of the job
// context and of template functions are JSON-like; other types, which
// only a host can put into a context, are bounded by their kind or,
// for types with their own formatting, by calling it.
func (z *sizer) fmtValue(v reflect.Value, s spec, depth int) {
	z.visited++
	if z.over() {
		return
	}
	if depth > maxDepth {
		z.add(z.limit + 1)
		return
	}
	pad := s.width + 8
	if !v.IsValid() {
		z.add(17 + pad) // <nil>, or interface {}(nil) for %#v
		return
	}
	if v.CanInterface() && v.Kind() != reflect.String && v.Kind() != reflect.Interface {
		t := v.Type()
		if t.Implements(formatterType) || (t.Implements(stringerType) || t.Implements(errorType)) && !(s.sharp && s.verb == 'v') {
			z.add(len(fmt.Sprintf(fmtVerb(s), v.Interface())))
			return
		}
	}
	switch v.Kind() {
	case reflect.String:
		if v.CanInterface() && v.Type() != reflect.TypeFor[string]() && v.Type().Implements(stringerType) {
			z.add(len(fmt.Sprintf(fmtVerb(s), v.Interface())))
			return
		}
		l := v.Len()
		if s.hasPrecision { // precision counts runes of the string
			l = min(l, utf8.UTFMax*s.prec)
		}
		z.add(l*s.stringFactor() + 2 + pad)
	case reflect.Bool:
		z.add(5 + pad)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		z.add(70 + s.prec + pad) // %b of a 64-bit number with prefix
	case reflect.Float32, reflect.Float64:
		z.add(330 + s.prec + pad) // %f of 1e308
	case reflect.Complex64, reflect.Complex128:
		z.add(2*(330+s.prec+pad) + 4) // width applies to both parts
	case reflect.Interface:
		if v.IsNil() {
			z.add(17 + pad)
			return
		}
		z.fmtValue(v.Elem(), s, depth+1)
	case reflect.Pointer:
		if v.IsNil() {
			z.add(17 + pad)
			return
		}
		if depth == 0 { // fmt follows a pointer at the top level only
			switch v.Elem().Kind() {
			case reflect.Array, reflect.Slice, reflect.Struct, reflect.Map:
				z.add(1)
				z.fmtValue(v.Elem(), s, depth+1)
				return
			}
		}
		z.add(24 + pad)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 && strings.ContainsRune("sqxX", s.verb) {
			z.add(v.Len()*s.stringFactor() + 2 + pad) // formatted as a string
			return
		}
		z.add(len(v.Type().String()) + 4 + pad)
		for i := range v.Len() {
			if !z.add(2) {
				return
			}
			z.fmtValue(v.Index(i), s, depth+1)
		}
	case reflect.Map:
		z.add(len(v.Type().String()) + 4 + pad)
		z.alloc += 48 * v.Len() // fmt sorts the keys
		it := v.MapRange()
		for it.Next() {
			if !z.add(3) {
				return
			}
			z.fmtValue(it.Key(), s, depth+1)
			z.fmtValue(it.Value(), s, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		z.add(len(t.String()) + 4 + pad)
		for i := range v.NumField() {
			if !z.add(len(t.Field(i).Name) + 3) {
				return
			}
			z.fmtValue(v.Field(i), s, depth+1)
		}
	default: // chan, func, unsafe pointer: an address
		z.add(len(v.Type().String()) + 24 + pad)
	}
}

// fmtVerb rebuilds the verb of s for a value formatting itself.
func fmtVerb(s spec) string {
	f := "%"
	if s.plus {
		f += "+"
	}
	if s.sharp {
		f += "#"
	}
	if s.space {
		f += " "
	}
	if s.width > 0 {
		f += strconv.Itoa(s.width)
	}
	if s.hasPrecision {
		f += "." + strconv.Itoa(s.prec)
	}
	return f + string(s.verb)
}

// jsonSize bounds json.Marshal(v).
func jsonSize(st *execState, v any) (int, error) {
	z := newSizer(st)
	z.jsonValue(reflect.ValueOf(v), 0)
	return z.finish(st)
}

func (z *sizer) jsonValue(v reflect.Value, depth int) {
	z.visited++
	if z.over() {
		return
	}
	if depth > maxDepth {
		z.add(z.limit + 1)
		return
	}
	if !v.IsValid() {
		z.add(4)
		return
	}
	if v.Kind() != reflect.Interface && v.CanInterface() {
		t := v.Type()
		if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
			if v.Kind() == reflect.Pointer && v.IsNil() {
				z.add(4)
				return
			}
			if n, ok := v.Interface().(json.Number); ok {
				z.add(len(n))
				return
			}
			b, err := json.Marshal(v.Interface())
			if err == nil {
				z.add(len(b))
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.String:
		z.add(jsonStringSize(v.String()))
	case reflect.Bool:
		z.add(5)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		z.add(20)
	case reflect.Float32, reflect.Float64:
		z.add(25)
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			z.add(4)
			return
		}
		z.jsonValue(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			z.add(base64.StdEncoding.EncodedLen(v.Len()) + 2)
			return
		}
		z.add(2)
		for i := range v.Len() {
			if !z.add(1) {
				return
			}
			z.jsonValue(v.Index(i), depth+1)
		}
	case reflect.Map:
		z.add(2)
		z.alloc += 64 * v.Len() // encoding/json sorts the keys
		it := v.MapRange()
		for it.Next() {
			if !z.add(2) {
				return
			}
			if it.Key().Kind() == reflect.String {
				z.add(jsonStringSize(it.Key().String()))
			} else {
				z.add(24)
			}
			z.jsonValue(it.Value(), depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		z.add(2)
		for i := range v.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			if !z.add(len(f.Name) + len(f.Tag.Get("json")) + 4) {
				return
			}
			z.jsonValue(v.Field(i), depth+1)
		}
	default: // json.Marshal fails on these
		z.add(4)
	}
}

// jsonStringSize is the length of s encoded by encoding/json, which
// escapes HTML characters, control characters, U+2028, U+2029 and
// invalid UTF-8.
func jsonStringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < ' ' || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += w
		}
		i += w
	}
	return n
}

// quoteSize is len(strconv.Quote(s)).
func quoteSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		r, w := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, w = utf8.DecodeRuneInString(s[i:])
		}
		i += w
		switch {
		case w == 1 && r == utf8.RuneError:
			n += 4
		case r == '"' || r == '\\':
			n += 2
		case strconv.IsPrint(r):
			n += w
		case r == '\a' || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t' || r == '\v':
			n += 2
		case r < ' ' || r == 0x7f:
			n += 4
		case r < 0x10000:
			n += 6
		default:
			n += 10
		}
	}
	return n
}

// mappedSize bounds the length of s after strings.Map(f, s), or after
// title: invalid bytes become U+FFFD.
func mappedSize(s string, f func(rune) rune) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			n += 3
		} else {
			n += max(utf8.RuneLen(f(r)), w) // title keeps some runes as they are
		}
		i += w
	}
	return n
}

// htmlSize bounds text/template's HTMLEscapeString.
func htmlSize(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\'', '&':
			n += 5
		case '<', '>':
			n += 4
		case 0:
			n += 3
		default:
			n++
		}
	}
	return n
}

// jsSize bounds text/template's JSEscapeString.
func jsSize(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\\' || c == '\'' || c == '"':
				n += 2
			case c == '<' || c == '>' || c == '&' || c == '=' || c < ' ':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if unicode.IsPrint(r) {
			n += w
		} else {
			n += 8
		}
		i += w
	}
	return n
}

// urlQuerySize bounds url.QueryEscape.
func urlQuerySize(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == ' ' {
			n++
		} else {
			n += 3
		}
	}
	return n
}
