using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;

namespace CrmEngine.Host.Commands;

/// <summary>What an administration verb prints: its text, and whether it succeeded (exit code 0) or was refused.</summary>
internal sealed record TextAnswer(string Text, bool Ok);

/// <summary>
/// The one way administration verbs reach the engine's data: while the engine runs, through its control channel (the
/// running process owns the one open database, and its workers are told at once); when it is stopped, directly on the
/// database, opened by <c>open</c> after checking that no other process holds it. Both sides answer a
/// <see cref="TextAnswer"/>, printed to stdout (success) or stderr (refusal; stdout when the text is a report, as for
/// <c>crm rules test</c>). An <see cref="ArgumentException"/> from
/// the local side is a usage error.
/// </summary>
internal static class ControlOrDatabase
{
    public static async Task<int> RunAsync<TLocal>(System.CommandLine.ParseResult parse, CancellationToken ct,
        Func<ControlClient, Task<TextAnswer>> remote,
        Func<CrmConfiguration, StoreOptions, TLocal> open,
        Func<TLocal, Task<TextAnswer>> local,
        TimeSpan? timeout = null,
        bool refusalOnStdout = false) where TLocal : IDisposable
    {
        var crm = CrmCommandLine.LoadConfiguration(parse);
        var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
        TextAnswer answer;
        if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
        {
            using var client = new ControlClient(endpoint, timeout ?? TimeSpan.FromMinutes(1));
            answer = await remote(client);
        }
        else
        {
            var store = AdminCommands.StoreOptionsOf(crm);
            var live = CrmDatabase.ResolveFilePath(store, crm.ContentRoot);
            if (InstanceLock.IsHeld(store.DataDirectory, out var holder) || (File.Exists(live) && CrmDatabase.IsInUse(live)))
            {
                throw new CommandRefusedException($"the database {live} is in use by another process{holder} but no service answers on {endpoint}.");
            }

            try
            {
                using var opened = open(crm, store);
                answer = await local(opened);
            }
            catch (ArgumentException ex)
            {
                throw new CommandRefusedException(ex.Message, ExitCodes.Usage);
            }
        }

        if (answer.Ok || refusalOnStdout)
        {
            Console.Write(answer.Text);
            return answer.Ok ? ExitCodes.Ok : ExitCodes.Refused;
        }

        await Console.Error.WriteAsync(answer.Text);
        return ExitCodes.Refused;
    }
}
