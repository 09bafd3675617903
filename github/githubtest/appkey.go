package githubtest

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
)

// appKey is the fakes' App key, the same in every process. It is a fake's
// key, public on purpose: generating a 2048-bit key took a tenth of a
// second of every test process under the race detector. The PEM says
// TESTING KEY so that secret scanners do not take it for a real one.
var appKey = sync.OnceValue(func() *rsa.PrivateKey {
	block, _ := pem.Decode([]byte(appKeyPKCS1PEM))
	if block == nil {
		panic("githubtest: the embedded App key is not PEM")
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		panic("githubtest: the embedded App key: " + err.Error())
	}
	return key
})

// appKeyPKCS1PEM is the key as Server.PrivateKeyPEM hands it out.
var appKeyPKCS1PEM = strings.ReplaceAll(appKeyPEM, "TESTING KEY", "PRIVATE KEY")

// appKeyPEM was made with `openssl genrsa -traditional 2048`.
const appKeyPEM = `-----BEGIN RSA TESTING KEY-----
MIIEogIBAAKCAQEApkW8eWoXQRvmq9QkdlH+2/YoDznyHkKDZ8RHq0seuEM2K/Ad
KI5sd2yBvYtKQjQGnvQRfMSrfdEJbdtEkTBBM5fNGjDAy8lp3WJB5bacYNi8FgBd
PS72R0tVVvmyh0cCt/6Y3/uTC2rnXqMX0C7N9veNIjt5mKxSpeE9uVKx4NwF6u8V
/rBm+JRZcLIRfr1zzYa3sYX5q0t8O96IkaQJs/5uv18/AwWevwMX26ATukjAnmPf
6QvHh3C0MFXMfKqtJxteGHYDxXfR3bLrOB9RX71eFuNtWnJ7ze3ImBtY1CWMFryP
bTnVYaCHCY+8RAE1r8n8UXS6PNNKf/08gNmDlQIDAQABAoIBAATfFAGfpCzwvxOc
3HDzVTWcaDnipKS9JfdEkXqj3F4hfqUPZ3Sgeu44dDL5htRajLDGraYmPJsBT0F+
yYBnyu/oHDwj87C/cYCpCA1i9KvECyX+3pHJaNxCXq6faVsGxNOKBpsWAQ3Lf5oE
H7wQ9FEDxDNdouH1odnrzTXl2xcfdwQPS+F07ZGC8UDJX41C+xe6has+4bVNTpJb
jyvY6nrJ1UZLrNa+/I1RCl5JAsVg0aIHUikQXEH/FzLyMTY8lf63iM9bB9eG51Q7
IPFZDeJMPkf0xZKNuCaMoJAkfFyc6q16xXD92yr1z7HX1DXVn7hCKJu1EJLe4JEd
Q7i7UrkCgYEA2Yh5v+SPmkmPCaMpUW06551TlMU2HNKM2OMyKRlYJwwVotpL51ly
w/yEhgqUhxVW025dQZ0uqowLwvXt/p35p1xwB0imr9Uiw7eW/BEyTiYxyiLyMopO
ZUUAw1ubZArM6yjDEVfKRbgKHHVW+lQTZ90HtHEuI90Ir2B01xKi290CgYEAw6y8
V1iVkaOFEicdCwwSj49p5GPd37BPozPEwcRZIU2/1ZPGURWUxS/a6Fjgp6WWrGZO
s30R5r92KPFsU86QSDQ3Yo8q0d6+pc1XQL2TQ2tkjAEierYaarIFNy0Mrs9JXkpu
1M/EDCBAeihg+I64z2fS/3EJB8cjT3jXHVs7BxkCgYANIYPX5YAVnCMaPdMcqy9H
E+QbstvVWZBO90fr2y/LC5uyvOKgEHIxCmklfjYBAXTARoUylL5gZRvApP+8wuRz
Cc1pYyVMr9ztW4Otq4wR05Rl0z4zds3MpyGoqTr0CwLbnxZHUblQBA/4L80UR0b0
mg8BAWP7njgL/hKPePyDsQKBgB9UP8+IWmI4GS0/3/GN3EbqAl1T9AlFlGqf9kfD
5TVk2msavuzqlKhBsj3zRPzykT5HHyCzzLLyQrvpc5uzffxhh+Ca5ZM2o7WuO+Mc
t0BbKH0WDWwyTeZ5XEZqSxaOD8QuDLK8FTqPy2MDpgsF5ucmS20krvp00t19jouf
uMK5AoGAXgXMQj8niJJ6VKJE0y2jxbrME9SAhtyrGtSCVNzK4rK5nIzYZV1eYqch
TJvR5jNAQlf3fa3rXkBfRtypAXywGL1Wb/jRpuJfZyRq9J0uUOoIm6vNTe1ePS0O
N1v46s4DCcMS93VaLjLVese4sM5/6AvFwMfMUi1i2NRrunX7QqE=
-----END RSA TESTING KEY-----
`
