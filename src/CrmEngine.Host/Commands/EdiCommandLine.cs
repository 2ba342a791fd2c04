using System.CommandLine;
using CrmEngine.Edi;

namespace CrmEngine.Host.Commands;

/// <summary>
/// <c>crm edi parse|validate|ack FILE</c>: the EDI codec on one file, without the engine running.
/// The codec owns its argument handling (<see cref="EdiCommands.Run"/>); this only declares the verbs.
/// </summary>
internal static class EdiCommandLine
{
    public static Command Edi()
    {
        var edi = new Command("edi", "EDI files (X12, EDIFACT): print as JSON, list validation errors, write the acknowledgement.");
        foreach (var (name, description) in new[]
                 {
                     ("parse", "Prints the file as JSON: segments by loop, the business document and any issues. --no-segments leaves the segments out."),
                     ("validate", "Lists every envelope and content error with its position and standard code; exit 1 when there are any."),
                     ("ack", "Writes the acknowledgement that would be sent (997 before X12 00501, 999 from 00501, CONTRL for EDIFACT). --out PATH, --type 997|999|contrl."),
                 })
        {
            var file = new Argument<string>("file") { Description = "The EDI file." };
            var output = new Option<string?>("--out") { Description = "Write the acknowledgement to this file instead of the console." };
            var type = new Option<string?>("--type") { Description = "Acknowledgement type: 997, 999 or contrl." };
            var noSegments = new Option<bool>("--no-segments") { Description = "Leave the raw segments out of the JSON." };
            var command = new Command(name, description) { file };
            if (name == "ack")
            {
                command.Options.Add(output);
                command.Options.Add(type);
            }

            if (name == "parse")
            {
                command.Options.Add(noSegments);
            }

            command.SetAction(parse =>
            {
                var args = new List<string> { name, parse.GetValue(file)! };
                if (name == "ack" && parse.GetValue(output) is { } o)
                {
                    args.AddRange(["--out", o]);
                }

                if (name == "ack" && parse.GetValue(type) is { } t)
                {
                    args.AddRange(["--type", t]);
                }

                if (name == "parse" && parse.GetValue(noSegments))
                {
                    args.Add("--no-segments");
                }

                return EdiCommands.Run(args, Console.Out, Console.Error);
            });
            edi.Subcommands.Add(command);
        }

        return edi;
    }
}
