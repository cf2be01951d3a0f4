import CreateBoot from './commands/create/boot.ts';
import CreateDeployment from './commands/create/deployment.ts';
import CreateMachine from './commands/create/machine.ts';
import Deploy from './commands/deploy.ts';
import DeleteBoot from './commands/delete/boot.ts';
import DeleteDeployment from './commands/delete/deployment.ts';
import DeleteMachine from './commands/delete/machine.ts';
import DescribeBoot from './commands/describe/boot.ts';
import DescribeDeployment from './commands/describe/deployment.ts';
import DescribeMachine from './commands/describe/machine.ts';
import GetBoots from './commands/get/boots.ts';
import GetDefaults from './commands/get/defaults.ts';
import GetDeployments from './commands/get/deployments.ts';
import GetEvents from './commands/get/events.ts';
import GetLeases from './commands/get/leases.ts';
import GetMachines from './commands/get/machines.ts';
import Login from './commands/login.ts';
import Reinstall from './commands/reinstall.ts';
import Release from './commands/release.ts';
import Wake from './commands/wake.ts';
import UpdateDefaults from './commands/update/defaults.ts';
import UpdateDeployment from './commands/update/deployment.ts';

/**
 * oclif's "explicit" command strategy (package.json "oclif.commands"): the ids are listed here rather than found
 * by scanning src/commands, which needs no manifest and no glob at start-up. Ids use ":"; users type a space
 * (topicSeparator), so `smeltctl get boots` runs "get:boots". Singular aliases live on each class.
 */
export const COMMANDS = {
  login: Login,
  'get:boots': GetBoots,
  'get:defaults': GetDefaults,
  'get:deployments': GetDeployments,
  'get:events': GetEvents,
  'get:leases': GetLeases,
  'get:machines': GetMachines,
  'describe:boot': DescribeBoot,
  'describe:deployment': DescribeDeployment,
  'describe:machine': DescribeMachine,
  'create:boot': CreateBoot,
  'create:deployment': CreateDeployment,
  'create:machine': CreateMachine,
  'update:defaults': UpdateDefaults,
  'update:deployment': UpdateDeployment,
  'delete:boot': DeleteBoot,
  'delete:deployment': DeleteDeployment,
  'delete:machine': DeleteMachine,
  deploy: Deploy,
  release: Release,
  reinstall: Reinstall,
  wake: Wake,
};
