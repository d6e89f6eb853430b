/** A throw-away PKI made with the `openssl` command: a CA, a server certificate for 127.0.0.1, a client certificate. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EtcdMember } from "../../helpers/etcd.js";

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed none of the above. */
  otherCa: string;
  destroy(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A key pair and a certificate signed by `ca`, with the given X.509 extensions. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  openssl(
    dir,
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    subject,
  );
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-out",
    `${name}.crt`,
    "-extfile",
    `${name}.ext`,
  );
}

function selfSigned(dir: string, name: string, subject: string): void {
  openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "1",
    "-subj",
    subject,
  );
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), "escheduler-pki-"));
  selfSigned(dir, "ca", "/CN=escheduler test CA");
  selfSigned(dir, "other-ca", "/CN=some other CA");
  issue(
    dir,
    "server",
    "/CN=etcd",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  issue(dir, "client", "/CN=escheduler", "extendedKeyUsage=clientAuth\n");
  const path = (file: string) => join(dir, file);
  return {
    dir,
    ca: path("ca.crt"),
    serverCert: path("server.crt"),
    serverKey: path("server.key"),
    clientCert: path("client.crt"),
    clientKey: path("client.key"),
    otherCa: path("other-ca.crt"),
    destroy: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** etcd flags serving clients over TLS and requiring a client certificate signed by the CA. */
export function tlsServerArgs(pki: Pki): string[] {
  return [
    "--cert-file",
    pki.serverCert,
    "--key-file",
    pki.serverKey,
    "--trusted-ca-file",
    pki.ca,
    "--client-cert-auth",
  ];
}

/** An HTTPS health probe of a TLS etcd member, with the client certificate. */
export function tlsHealthCheck(pki: Pki): (member: EtcdMember) => Promise<boolean> {
  const options = {
    ca: readFileSync(pki.ca),
    cert: readFileSync(pki.clientCert),
    key: readFileSync(pki.clientKey),
  };
  return (member) =>
    new Promise((resolve) => {
      const req = request(
        `${member.endpoint}/health`,
        { ...options, servername: "localhost", timeout: 1_000 },
        (response) => {
          let body = "";
          response.on("data", (chunk) => {
            body += chunk;
          });
          response.on("end", () => resolve(/"health":\s*"true"/.test(body)));
        },
      );
      req.on("error", () => resolve(false));
      req.on("timeout", () => req.destroy());
      req.end();
    });
}
