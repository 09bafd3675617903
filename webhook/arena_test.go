package webhook

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// detachers are the event types decoded with their strings in one
// allocation: every event type with a routing head and no map.
var detachers = []any{
	&head{}, &WorkflowRunEvent{}, &WorkflowJobEvent{}, &DeploymentStatusEvent{}, &CheckRunEvent{},
	&DeploymentProtectionRuleEvent{}, &PullRequestEvent{},
}

// TestDetachVisitsEveryString decodes, into each detacher type, a payload
// in which every string of the type is set, and checks that no string of
// the result refers to the payload: a string that detach does not visit
// would.
func TestDetachVisitsEveryString(t *testing.T) {
	t.Parallel()
	for _, v := range append(detachers, &InstallationEvent{}, &InstallationRepositoriesEvent{}) {
		_, isDetacher := v.(detacher)
		require.Equal(t, !hasMap(reflect.TypeOf(v).Elem()), isDetacher, "%T: a type with a routing head and no map is a detacher", v)
	}
	for _, v := range detachers {
		for _, empty := range []bool{false, true} {
			typ := reflect.TypeOf(v).Elem()
			want := reflect.New(typ)
			n := 0
			fill(t, want.Elem(), &n, empty)
			payload, err := json.Marshal(want.Interface())
			require.NoError(t, err)
			got := reflect.New(typ)
			require.NoError(t, decodeJSON(payload, got.Interface()))
			require.Equal(t, want.Interface(), got.Interface())
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(payload)))
			walkStrings(got.Elem(), "", func(path string, p unsafe.Pointer) {
				if a := uintptr(p); a >= lo && a < lo+uintptr(cap(payload)) {
					t.Errorf("%T (empty strings %t): %s refers to the payload", v, empty, path)
				}
			})
		}
	}
}

// hasMap reports whether a value of typ holds a map.
func hasMap(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Map:
		return true
	case reflect.Pointer, reflect.Slice:
		return hasMap(typ.Elem())
	case reflect.Struct:
		for i := range typ.NumField() {
			if hasMap(typ.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// fill sets every string in v to a value of its own (or to "" when
// empty), gives slices two elements and pointers a value.
func fill(t *testing.T, v reflect.Value, n *int, empty bool) {
	t.Helper()
	if v.Type() == reflect.TypeFor[json.RawMessage]() {
		*n++
		v.SetBytes([]byte(`"raw` + strconv.Itoa(*n) + `"`))
		return
	}
	if v.Type() == reflect.TypeFor[time.Time]() {
		return
	}
	switch v.Kind() {
	case reflect.String:
		*n++
		if !empty {
			v.SetString("s" + strconv.Itoa(*n))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), n, empty)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), n, empty)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), n, empty)
	case reflect.Int, reflect.Int64, reflect.Bool:
	default:
		t.Fatalf("fill: no rule for %s", v.Type())
	}
}

// walkStrings calls fn with the address of the bytes of every string and
// byte slice in v.
func walkStrings(v reflect.Value, path string, fn func(path string, p unsafe.Pointer)) {
	switch v.Kind() {
	case reflect.String:
		fn(path, unsafe.Pointer(unsafe.StringData(v.String())))
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), path+"."+v.Type().Field(i).Name, fn)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			fn(path, v.UnsafePointer())
			return
		}
		for i := range v.Len() {
			walkStrings(v.Index(i), path+"["+strconv.Itoa(i)+"]", fn)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, fn)
		}
	}
}
