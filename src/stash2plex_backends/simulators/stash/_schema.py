"""Our own GraphQL schema subset for the simulated Stash.

Written for the simulator (Stash's own SDL is AGPL and stays out of this repository). Type,
field and argument names and nullability follow Stash v0.30 for everything stash2plex and
stashapi touch, so that stashapi's introspection-generated fragments and our explicit
queries both validate. Fields absent here are fields nobody we care about asks for.
"""

from __future__ import annotations

import functools

from graphql import GraphQLSchema
from graphql import build_schema


SDL = """
"RFC 3339 text in the server's zone, second precision."
scalar Time
"Accepts RFC 3339 or relative forms; only used in inputs."
scalar Timestamp
"A JSON object."
scalar Map
"Any JSON value."
scalar Any
"A JSON object of booleans."
scalar BoolMap
"Plugin id to that plugin's settings object."
scalar PluginConfigMap
"A 64-bit integer, serialised as a JSON number."
scalar Int64

enum SortDirectionEnum { ASC DESC }

enum CriterionModifier {
  EQUALS
  NOT_EQUALS
  GREATER_THAN
  LESS_THAN
  IS_NULL
  NOT_NULL
  INCLUDES_ALL
  INCLUDES
  EXCLUDES
  MATCHES_REGEX
  NOT_MATCHES_REGEX
  BETWEEN
  NOT_BETWEEN
}

enum GenderEnum { MALE FEMALE TRANSGENDER_MALE TRANSGENDER_FEMALE INTERSEX NON_BINARY }

enum JobStatus { READY RUNNING FINISHED STOPPING CANCELLED FAILED }

enum BulkUpdateIdMode { SET ADD REMOVE }

type Query {
  version: Version!
  configuration: ConfigResult!
  findScene(id: ID, checksum: String): Scene
  findScenes(
    scene_filter: SceneFilterType
    scene_ids: [Int!] @deprecated(reason: "use ids")
    ids: [ID!]
    filter: FindFilterType
  ): FindScenesResultType!
  findPerformer(id: ID!): Performer
  findPerformers(
    performer_filter: PerformerFilterType
    filter: FindFilterType
    performer_ids: [Int!] @deprecated(reason: "use ids")
    ids: [ID!]
  ): FindPerformersResultType!
  findStudio(id: ID!): Studio
  findStudios(studio_filter: StudioFilterType, filter: FindFilterType, ids: [ID!]): FindStudiosResultType!
  findTag(id: ID!): Tag
  findTags(tag_filter: TagFilterType, filter: FindFilterType, ids: [ID!]): FindTagsResultType!
  findGroup(id: ID!): Group
  findGroups(group_filter: GroupFilterType, filter: FindFilterType, ids: [ID!]): FindGroupsResultType!
  findJob(input: FindJobInput!): Job
  jobQueue: [Job!]
}

type Mutation {
  sceneUpdate(input: SceneUpdateInput!): Scene
  bulkSceneUpdate(input: BulkSceneUpdateInput!): [Scene!]
  sceneDestroy(input: SceneDestroyInput!): Boolean!
  scenesDestroy(input: ScenesDestroyInput!): Boolean!
  performerUpdate(input: PerformerUpdateInput!): Performer
  studioUpdate(input: StudioUpdateInput!): Studio
  tagUpdate(input: TagUpdateInput!): Tag
  groupUpdate(input: GroupUpdateInput!): Group
  configurePlugin(plugin_id: ID!, input: Map!): Map!
  "Queues a plugin task; returns the job id."
  runPluginTask(
    plugin_id: ID!
    task_name: String
    description: String
    args: [PluginArgInput!] @deprecated(reason: "use args_map")
    args_map: Map
  ): ID!
  stopJob(job_id: ID!): Boolean!
}

type Version {
  version: String
  hash: String!
  build_time: String!
}

type ConfigResult {
  general: ConfigGeneralResult!
  ui: Map!
  plugins(include: [ID!]): PluginConfigMap!
}

type ConfigGeneralResult {
  stashes: [StashConfig!]!
  databasePath: String!
  generatedPath: String!
  apiKey: String!
  username: String!
  maxSessionAge: Int!
}

type StashConfig {
  path: String!
  excludeVideo: Boolean!
  excludeImage: Boolean!
}

type Job {
  id: ID!
  status: JobStatus!
  subTasks: [String!]
  description: String!
  progress: Float
  startTime: Time
  endTime: Time
  addTime: Time!
  error: String
}

input FindJobInput { id: ID! }

type Scene {
  id: ID!
  title: String
  code: String
  details: String
  director: String
  url: String @deprecated(reason: "use urls")
  urls: [String!]!
  date: String
  rating100: Int
  organized: Boolean!
  o_counter: Int
  interactive: Boolean!
  interactive_speed: Int
  captions: [VideoCaption!]
  created_at: Time!
  updated_at: Time!
  last_played_at: Time
  resume_time: Float
  play_duration: Float
  play_count: Int
  play_history: [Time!]!
  o_history: [Time!]!
  "Primary file first."
  files: [VideoFile!]!
  paths: ScenePathsType!
  studio: Studio
  groups: [SceneGroup!]!
  tags: [Tag!]!
  performers: [Performer!]!
  stash_ids: [StashID!]!
  sceneStreams: [SceneStreamEndpoint!]!
}

type ScenePathsType {
  screenshot: String
  preview: String
  stream: String
  webp: String
  vtt: String
  sprite: String
  funscript: String
  interactive_heatmap: String
  caption: String
}

type SceneGroup {
  group: Group!
  scene_index: Int
}

type VideoCaption {
  language_code: String!
  caption_type: String!
}

type SceneStreamEndpoint {
  url: String!
  mime_type: String
  label: String
}

type StashID {
  endpoint: String!
  stash_id: String!
  updated_at: Time!
}

type Fingerprint {
  type: String!
  value: String!
}

type Folder {
  id: ID!
  path: String!
  parent_folder: Folder
  zip_file: BasicFile
  mod_time: Time!
  created_at: Time!
  updated_at: Time!
}

interface BaseFile {
  id: ID!
  path: String!
  basename: String!
  parent_folder: Folder!
  zip_file: BasicFile
  mod_time: Time!
  size: Int64!
  fingerprint(type: String!): String
  fingerprints: [Fingerprint!]!
  created_at: Time!
  updated_at: Time!
}

type BasicFile implements BaseFile {
  id: ID!
  path: String!
  basename: String!
  parent_folder: Folder!
  zip_file: BasicFile
  mod_time: Time!
  size: Int64!
  fingerprint(type: String!): String
  fingerprints: [Fingerprint!]!
  created_at: Time!
  updated_at: Time!
}

type VideoFile implements BaseFile {
  id: ID!
  path: String!
  basename: String!
  parent_folder: Folder!
  zip_file: BasicFile
  mod_time: Time!
  size: Int64!
  fingerprint(type: String!): String
  fingerprints: [Fingerprint!]!
  format: String!
  width: Int!
  height: Int!
  "Seconds."
  duration: Float!
  video_codec: String!
  audio_codec: String!
  frame_rate: Float!
  bit_rate: Int!
  created_at: Time!
  updated_at: Time!
}

type Studio {
  id: ID!
  name: String!
  urls: [String!]!
  parent_studio: Studio
  child_studios: [Studio!]!
  aliases: [String!]!
  tags: [Tag!]!
  ignore_auto_tag: Boolean!
  image_path: String
  scene_count(depth: Int): Int!
  rating100: Int
  favorite: Boolean!
  details: String
  created_at: Time!
  updated_at: Time!
  stash_ids: [StashID!]!
}

type Performer {
  id: ID!
  name: String!
  disambiguation: String
  urls: [String!]
  gender: GenderEnum
  birthdate: String
  country: String
  alias_list: [String!]!
  favorite: Boolean!
  tags: [Tag!]!
  ignore_auto_tag: Boolean!
  "Ends in &default=true when the performer has no image: Stash then serves a placeholder."
  image_path: String
  scene_count: Int!
  stash_ids: [StashID!]!
  rating100: Int
  details: String
  created_at: Time!
  updated_at: Time!
  custom_fields: Map!
}

type Tag {
  id: ID!
  name: String!
  sort_name: String
  description: String
  aliases: [String!]!
  ignore_auto_tag: Boolean!
  favorite: Boolean!
  stash_ids: [StashID!]!
  image_path: String
  scene_count(depth: Int): Int!
  parents: [Tag!]!
  children: [Tag!]!
  parent_count: Int!
  child_count: Int!
  created_at: Time!
  updated_at: Time!
}

type Group {
  id: ID!
  name: String!
  aliases: String
  "Seconds."
  duration: Int
  date: String
  rating100: Int
  studio: Studio
  director: String
  synopsis: String
  urls: [String!]!
  tags: [Tag!]!
  containing_groups: [GroupDescription!]!
  sub_groups: [GroupDescription!]!
  front_image_path: String
  back_image_path: String
  scene_count(depth: Int): Int!
  created_at: Time!
  updated_at: Time!
}

type GroupDescription {
  group: Group!
  description: String
}

type FindScenesResultType {
  count: Int!
  "Seconds, summed over all files."
  duration: Float!
  "Bytes, summed over all files."
  filesize: Float!
  scenes: [Scene!]!
}

type FindPerformersResultType {
  count: Int!
  performers: [Performer!]!
}

type FindStudiosResultType {
  count: Int!
  studios: [Studio!]!
}

type FindTagsResultType {
  count: Int!
  tags: [Tag!]!
}

type FindGroupsResultType {
  count: Int!
  groups: [Group!]!
}

input FindFilterType {
  q: String
  "1-based."
  page: Int
  "Default 25; -1 returns every row."
  per_page: Int
  sort: String
  direction: SortDirectionEnum
}

input StringCriterionInput {
  value: String!
  modifier: CriterionModifier!
}

input IntCriterionInput {
  value: Int!
  value2: Int
  modifier: CriterionModifier!
}

input TimestampCriterionInput {
  value: String!
  value2: String
  modifier: CriterionModifier!
}

input DateCriterionInput {
  value: String!
  value2: String
  modifier: CriterionModifier!
}

input MultiCriterionInput {
  value: [ID!]
  modifier: CriterionModifier!
  excludes: [ID!]
}

input HierarchicalMultiCriterionInput {
  value: [ID!]
  modifier: CriterionModifier!
  depth: Int
  excludes: [ID!]
}

input SceneFilterType {
  AND: SceneFilterType
  OR: SceneFilterType
  NOT: SceneFilterType
  id: IntCriterionInput
  title: StringCriterionInput
  code: StringCriterionInput
  details: StringCriterionInput
  director: StringCriterionInput
  oshash: StringCriterionInput
  checksum: StringCriterionInput
  phash: StringCriterionInput
  path: StringCriterionInput
  url: StringCriterionInput
  rating100: IntCriterionInput
  organized: Boolean
  interactive: Boolean
  duration: IntCriterionInput
  file_count: IntCriterionInput
  performer_count: IntCriterionInput
  tag_count: IntCriterionInput
  is_missing: String
  studios: HierarchicalMultiCriterionInput
  tags: HierarchicalMultiCriterionInput
  groups: HierarchicalMultiCriterionInput
  performers: MultiCriterionInput
  date: DateCriterionInput
  created_at: TimestampCriterionInput
  updated_at: TimestampCriterionInput
}

input PerformerFilterType {
  AND: PerformerFilterType
  OR: PerformerFilterType
  NOT: PerformerFilterType
  name: StringCriterionInput
  disambiguation: StringCriterionInput
  details: StringCriterionInput
  aliases: StringCriterionInput
  favorite: Boolean
  created_at: TimestampCriterionInput
  updated_at: TimestampCriterionInput
}

input StudioFilterType {
  AND: StudioFilterType
  OR: StudioFilterType
  NOT: StudioFilterType
  name: StringCriterionInput
  details: StringCriterionInput
  aliases: StringCriterionInput
  url: StringCriterionInput
  parents: MultiCriterionInput
  favorite: Boolean
  created_at: TimestampCriterionInput
  updated_at: TimestampCriterionInput
}

input TagFilterType {
  AND: TagFilterType
  OR: TagFilterType
  NOT: TagFilterType
  name: StringCriterionInput
  description: StringCriterionInput
  aliases: StringCriterionInput
  favorite: Boolean
  created_at: TimestampCriterionInput
  updated_at: TimestampCriterionInput
}

input GroupFilterType {
  AND: GroupFilterType
  OR: GroupFilterType
  NOT: GroupFilterType
  name: StringCriterionInput
  director: StringCriterionInput
  synopsis: StringCriterionInput
  url: StringCriterionInput
  created_at: TimestampCriterionInput
  updated_at: TimestampCriterionInput
}

input SceneGroupInput {
  group_id: ID!
  scene_index: Int
}

input SceneUpdateInput {
  clientMutationId: String
  id: ID!
  title: String
  code: String
  details: String
  director: String
  url: String @deprecated(reason: "use urls")
  urls: [String!]
  date: String
  rating100: Int
  organized: Boolean
  studio_id: ID
  performer_ids: [ID!]
  groups: [SceneGroupInput!]
  tag_ids: [ID!]
  "A base64 data URL."
  cover_image: String
  resume_time: Float
  play_duration: Float
  primary_file_id: ID
}

input BulkUpdateIds {
  ids: [ID!]
  mode: BulkUpdateIdMode!
}

input BulkUpdateStrings {
  values: [String!]
  mode: BulkUpdateIdMode!
}

input BulkSceneUpdateInput {
  clientMutationId: String
  ids: [ID!]
  title: String
  code: String
  details: String
  director: String
  urls: BulkUpdateStrings
  date: String
  rating100: Int
  organized: Boolean
  studio_id: ID
  performer_ids: BulkUpdateIds
  tag_ids: BulkUpdateIds
  group_ids: BulkUpdateIds
}

input SceneDestroyInput {
  id: ID!
  delete_file: Boolean
  delete_generated: Boolean
}

input ScenesDestroyInput {
  ids: [ID!]!
  delete_file: Boolean
  delete_generated: Boolean
}

input PerformerUpdateInput {
  id: ID!
  name: String
  disambiguation: String
  urls: [String!]
  gender: GenderEnum
  birthdate: String
  country: String
  alias_list: [String!]
  favorite: Boolean
  tag_ids: [ID!]
  "A base64 data URL; null removes the image."
  image: String
  rating100: Int
  details: String
  ignore_auto_tag: Boolean
}

input StudioUpdateInput {
  id: ID!
  name: String
  urls: [String!]
  parent_id: ID
  image: String
  aliases: [String!]
  tag_ids: [ID!]
  rating100: Int
  favorite: Boolean
  details: String
  ignore_auto_tag: Boolean
}

input TagUpdateInput {
  id: ID!
  name: String
  sort_name: String
  description: String
  aliases: [String!]
  ignore_auto_tag: Boolean
  favorite: Boolean
  image: String
  parent_ids: [ID!]
}

input GroupUpdateInput {
  id: ID!
  name: String
  aliases: String
  duration: Int
  date: String
  rating100: Int
  studio_id: ID
  director: String
  synopsis: String
  urls: [String!]
  tag_ids: [ID!]
  front_image: String
}

input PluginArgInput {
  key: String!
  value: PluginValueInput
}

input PluginValueInput {
  str: String
  i: Int
  b: Boolean
  f: Float
  o: [PluginArgInput!]
  a: [PluginValueInput!]
}
"""


@functools.cache
def stash_schema() -> GraphQLSchema:
    """The schema with resolvers bound (built once per process; resolvers are stateless)."""
    from stash2plex_backends.simulators.stash._resolvers import bind

    schema = build_schema(SDL)
    bind(schema)
    return schema


__all__ = ["SDL", "stash_schema"]
