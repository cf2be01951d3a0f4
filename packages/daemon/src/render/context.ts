import type { DeploymentType } from '@smelt/shared/deployment';

/**
 * Everything a renderer may use, resolved before rendering: effective host settings (deployment over global
 * defaults over the DHCP subnet), absolute URLs, nothing left to look up. Renderers are pure functions of this
 * (render/*.ts); they escape every value for their own format and never run operator-supplied code.
 */
export interface RenderContext {
  /** Machine-facing HTTP base URL, no trailing slash (from config, never from a request). */
  baseUrl: string;
  machine: {
    mac: string;
    /** From DHCP option 93, e.g. "x86", "x86_64-efi"; undefined if never seen. */
    arch?: string | undefined;
    firmware: 'bios' | 'uefi';
  };
  deployment: {
    name: string;
    type: DeploymentType;
    /** Always set: the deployment's hostname, else its name. */
    hostname: string;
    domain?: string | undefined;
    network: StaticNetwork | DhcpNetwork;
    ntp: string[];
    packages: string[];
    sshKeys: string[];
    /** The user the installer creates; "smelt" when the deployment names none. */
    user: string;
    /** crypt(3) hash; undefined means no password login (SSH keys only). */
    passwordHash?: string | undefined;
    /** Target disk; undefined lets the installer choose the first disk. */
    disk?: string | undefined;
    mirror?: string | undefined;
    proxy?: string | undefined;
    /** Operator variables (--var k=v), for operator templates. */
    vars: Record<string, string>;
  };
  boot: {
    name: string;
    kernelUrl: string;
    initrdUrls: string[];
    /** The boot's kernel command line, as the operator wrote it (may be empty). */
    cmdline: string;
    /** URL of the whole ISO when the boot comes from one (Ubuntu's `url=`), else undefined. */
    isoUrl?: string | undefined;
  };
  urls: {
    /** This machine's answer file (preseed.cfg / ks.cfg / the NoCloud seed directory with a trailing slash). */
    answerFile: string;
    /** POST here when the install has finished: the machine is deployed. Carries the deployment's token. */
    phoneHome: string;
    /** POST here (optionally with a text body) when the install failed. */
    failed: string;
  };
}

export interface StaticNetwork {
  mode: 'static';
  address: string;
  /** Dotted quad, e.g. 255.255.255.0, and the same as a prefix length. */
  netmask: string;
  prefix: number;
  gateway?: string | undefined;
  dns: string[];
}

export interface DhcpNetwork {
  mode: 'dhcp';
  dns: string[];
}
