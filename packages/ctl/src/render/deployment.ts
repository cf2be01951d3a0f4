import { effectiveHostSettings, type GlobalDefaults } from '@smelt/shared/defaults';
import type { Deployment } from '@smelt/shared/deployment';
import { hostSettingsShape, type HostSettings } from '@smelt/shared/host';
import { formatAge, formatTime } from './age.ts';
import type { Field, Section } from './fields.ts';
import { styleState } from './state.ts';
import type { Column } from './table.ts';

export function deploymentColumns(now: Date, wide: boolean): Column<Deployment>[] {
  return [
    { header: 'NAME', value: (deployment) => deployment.name },
    { header: 'MAC', value: (deployment) => deployment.mac },
    { header: 'ADDRESS', value: (deployment) => deployment.address },
    { header: 'TYPE', value: (deployment) => deployment.type },
    { header: 'STATE', value: (deployment) => deployment.state, style: styleState },
    { header: 'AGE', value: (deployment) => formatAge(deployment.createdAt, now) },
    ...(wide
      ? [
          { header: 'BOOT', value: (deployment: Deployment) => deployment.boot },
          { header: 'HOSTNAME', value: (deployment: Deployment) => deployment.hostname },
          { header: 'GATEWAY', value: (deployment: Deployment) => deployment.gateway },
        ]
      : []),
  ];
}

type SettingKey = Exclude<keyof HostSettings, 'vars'>;
const settingLabels: Record<SettingKey, string> = {
  gateway: 'Gateway',
  netmask: 'Netmask',
  dns: 'DNS',
  ntp: 'NTP',
  domain: 'Domain',
  packages: 'Packages',
  sshKeys: 'SSH keys',
  user: 'User',
  passwordHash: 'Password hash',
  disk: 'Disk',
  mirror: 'Mirror',
  proxy: 'Proxy',
};
const settingKeys = Object.keys(hostSettingsShape).filter((key): key is SettingKey => key !== 'vars');

/** A deployment's own host settings: the fields of the deployment that the defaults could also supply. */
export function ownHostSettings(deployment: Deployment): HostSettings {
  const keys = Object.keys(hostSettingsShape) as (keyof HostSettings)[];
  return Object.fromEntries(keys.filter((key) => deployment[key] !== undefined).map((key) => [key, deployment[key]]));
}

/** An SSH key is a long base64 blob; its type, tail and comment are what a person compares. */
function abbreviateKey(key: string): string {
  const [type, blob = '', ...comment] = key.split(' ');
  return [type, `...${blob.slice(-12)}`, ...comment].join(' ');
}

function showSetting(key: SettingKey, value: HostSettings[SettingKey]): string | string[] | undefined {
  if (value === undefined) return undefined;
  if (key === 'passwordHash') return '<set> (shown by -o yaml)';
  if (key === 'sshKeys' && Array.isArray(value)) return value.map(abbreviateKey);
  return Array.isArray(value) ? value.join(', ') : value;
}

const INHERITED = '(default)';

/**
 * The settings the deployment will really get: its own, else the global defaults' (shared/defaults.ts decides the
 * merge). Values that come from the defaults are marked, so one can tell what changes if the defaults change.
 */
export function effectiveSettingsSections(deployment: Deployment, defaults: GlobalDefaults): Section[] {
  const own = ownHostSettings(deployment);
  const effective = effectiveHostSettings(defaults, own);
  const settings: Field[] = settingKeys.map((key) => ({
    label: settingLabels[key],
    value: showSetting(key, effective[key]),
    note: own[key] === undefined && effective[key] !== undefined ? INHERITED : undefined,
  }));
  const vars: Field[] = Object.entries(effective.vars ?? {}).map(([key, value]) => ({
    label: key,
    value,
    note: own.vars?.[key] === undefined ? INHERITED : undefined,
  }));
  return [
    { title: 'Settings', fields: settings },
    { title: 'Variables', fields: vars },
  ];
}

export function describeDeployment(deployment: Deployment, defaults: GlobalDefaults, now: Date): Section[] {
  return [
    {
      fields: [
        { label: 'Name', value: deployment.name },
        { label: 'MAC', value: deployment.mac },
        { label: 'Boot', value: deployment.boot },
        { label: 'Type', value: deployment.type },
        { label: 'State', value: deployment.state },
        { label: 'Address', value: deployment.address },
        { label: 'Hostname', value: deployment.hostname },
        { label: 'Created', value: formatTime(deployment.createdAt, now) },
        { label: 'Updated', value: formatTime(deployment.updatedAt, now) },
      ],
    },
    ...effectiveSettingsSections(deployment, defaults),
  ];
}
