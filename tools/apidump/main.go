// Command apidump prints the exported API of the packages of a Go module, one
// declaration per line and sorted, in the spirit of the Go project's api/*.txt files.
// CI compares its output with the golden file api/v1.txt, so that every change to the
// exported API is a reviewed diff:
//
//	cd tools && go run ./apidump -C .. > ../api/v1.txt
//
// Internal packages, test files and main packages are left out.
package main

import (
	"flag"
	"fmt"
	"go/types"
	"os"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

func main() {
	dir := flag.String("C", ".", "the module's directory")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	lines, err := dump(*dir, patterns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apidump:", err)
		os.Exit(1)
	}
	for _, l := range lines {
		fmt.Println(l)
	}
}

func dump(dir string, patterns []string) ([]string, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedTypes | packages.NeedModule,
		Dir:  dir,
		Env:  append(os.Environ(), "GOWORK=off"),
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			return nil, fmt.Errorf("%s: %v", p.PkgPath, p.Errors[0])
		}
		if p.Name == "main" || isInternal(p.PkgPath) {
			continue
		}
		lines = append(lines, pkgAPI(p.Types)...)
	}
	sort.Strings(lines)
	return lines, nil
}

func isInternal(path string) bool {
	for _, e := range strings.Split(path, "/") {
		if e == "internal" {
			return true
		}
	}
	return false
}

func pkgAPI(pkg *types.Package) []string {
	qual := func(p *types.Package) string {
		if p == pkg {
			return ""
		}
		return p.Name()
	}
	typ := func(t types.Type) string { return types.TypeString(t, qual) }
	sig := func(s *types.Signature) string {
		return strings.TrimPrefix(types.TypeString(unnamed(s), qual), "func")
	}
	prefix := "pkg " + pkg.Path() + ", "
	var out []string
	add := func(format string, args ...any) { out = append(out, prefix+fmt.Sprintf(format, args...)) }

	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch o := obj.(type) {
		case *types.Const:
			add("const %s %s = %s", name, typ(o.Type()), o.Val().ExactString())
		case *types.Var:
			add("var %s %s", name, typ(o.Type()))
		case *types.Func:
			s := o.Type().(*types.Signature)
			add("func %s%s%s", name, typeParams(s.TypeParams(), qual), sig(s))
		case *types.TypeName:
			typeAPI(o, qual, typ, sig, add)
		}
	}
	return out
}

// unnamed returns s without parameter and result names, which are not part of the
// API, and without its type parameters, which the caller prints.
func unnamed(s *types.Signature) *types.Signature {
	strip := func(t *types.Tuple) *types.Tuple {
		vars := make([]*types.Var, t.Len())
		for i := range vars {
			vars[i] = types.NewParam(t.At(i).Pos(), t.At(i).Pkg(), "", t.At(i).Type())
		}
		return types.NewTuple(vars...)
	}
	return types.NewSignatureType(nil, nil, nil, strip(s.Params()), strip(s.Results()), s.Variadic())
}

func typeParams(l *types.TypeParamList, qual types.Qualifier) string {
	if l == nil || l.Len() == 0 {
		return ""
	}
	var parts []string
	for i := 0; i < l.Len(); i++ {
		p := l.At(i)
		parts = append(parts, p.Obj().Name()+" "+types.TypeString(p.Constraint(), qual))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func typeAPI(o *types.TypeName, qual types.Qualifier, typ func(types.Type) string,
	sig func(*types.Signature) string, add func(string, ...any)) {
	name := o.Name()
	if o.IsAlias() {
		add("type %s = %s", name, typ(types.Unalias(o.Type())))
		return
	}
	named, ok := o.Type().(*types.Named)
	if !ok {
		add("type %s %s", name, typ(o.Type()))
		return
	}
	decl := name + typeParams(named.TypeParams(), qual)
	switch u := named.Underlying().(type) {
	case *types.Struct:
		add("type %s struct", decl)
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if !f.Exported() {
				continue
			}
			if f.Embedded() {
				add("type %s struct, embedded %s", decl, typ(f.Type()))
			} else {
				add("type %s struct, %s %s", decl, f.Name(), typ(f.Type()))
			}
		}
	case *types.Interface:
		add("type %s interface", decl)
		for i := 0; i < u.NumExplicitMethods(); i++ {
			m := u.ExplicitMethod(i)
			if m.Exported() {
				add("type %s interface, %s%s", decl, m.Name(), sig(m.Type().(*types.Signature)))
			}
		}
		for i := 0; i < u.NumEmbeddeds(); i++ {
			add("type %s interface, embedded %s", decl, typ(u.EmbeddedType(i)))
		}
	default:
		add("type %s %s", decl, typ(u))
	}
	// Methods on T and *T (the method set of *T includes both).
	ms := types.NewMethodSet(types.NewPointer(named))
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i).Obj().(*types.Func)
		if !m.Exported() || len(ms.At(i).Index()) > 1 {
			continue // promoted methods are listed with the embedded type
		}
		s := m.Type().(*types.Signature)
		recv := typ(s.Recv().Type())
		add("method (%s) %s%s", recv, m.Name(), sig(s))
	}
}
